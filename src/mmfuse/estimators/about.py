"""What a saved model folder is, read from its files alone: ``mmfuse info`` imports no plugin, builds no
processor or network and parses no member (a model folder is data, and info must work on one whose plugins are
not allowed here).

    about_folder("model/")   # -> the dict ``BaseEstimator.describe`` gives for the loaded model
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.columns import ColumnInfo
from ..io.bundle import damaged, read_bundle_config, read_json, verify_bundle
from ..pipeline import InputPlan, inputs_summary
from ..tasks import is_labelled


def about_folder(path: str | Path) -> dict[str, Any] | None:
    """The model's task, inputs, plugins, metrics and ensemble weights from config.json, metrics.json and the
    weights in portfolio.json (every file's checksum verified first); None for a bundle of format 1-3, which saved
    no input plan (describe the loaded model instead)."""
    folder = Path(path)
    config = read_bundle_config(folder)
    if "inputs" not in config:  # formats 1-3 saved no input plan: only the loaded model knows it
        return None
    verify_bundle(folder, config)
    try:
        columns = [ColumnInfo(**c) for c in config["columns"]]
        plans = {p["name"]: InputPlan(**p) for p in config["inputs"]}
        task, model = config["task"], config["model"]
        about = {"task": task["name"], "inputs": inputs_summary(columns, plans),
                 "metrics": read_json(folder / "metrics.json", folder) if (folder / "metrics.json").is_file() else {},
                 "mmfuse": config.get("mmfuse_version"), "plugins": list(config.get("plugins", []))}
        if not is_labelled(task["name"]):
            return {**about, "query": config["query"], "target": config["target"],
                    "embed_dim": model["retrieval"]["embed_dim"]}
        about |= {"label": config["label"], "label_sep": config.get("label_sep"), "classes": task.get("classes"),
                  "fusion": model["fusion"]["name"], "head": model["head"]["hidden_dims"]}
        if "members" in config:
            weights = read_json(folder / "portfolio.json", folder)["weights"]
            about["members"] = {str(n): float(w) for n, w in weights.items()}
        return about
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise damaged(folder, f"config.json does not describe a model this mmfuse knows ({type(err).__name__}: "
                              f"{err})") from None
