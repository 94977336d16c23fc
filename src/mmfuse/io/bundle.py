"""A saved model is a folder of JSON + safetensors; nothing is ever unpickled.

    config.json        format name/version, mmfuse version, label, task state, columns, model config, weights sha256
    processors.json    per input: processor kind, constructor params and fitted state (vocabularies, image mean/std,
                       category ids, ...); format 1 kept one flat mapping per input (converted on load)
    model.safetensors  the weights
    metrics.json       validation (and later test) metrics
    data_report.json   every skipped or masked row per split
    training_log.csv   per-epoch metrics
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from .. import __version__
from ..errors import BundleError
from .hashing import sha256_file

FORMAT_NAME = "mmfuse-bundle"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
REQUIRED = ("config.json", "processors.json", "model.safetensors")


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def save_bundle(path: str | Path, config: dict[str, Any], processors: dict[str, Any], weights: dict[str, Tensor],
                metrics: dict[str, Any], data_report: dict[str, Any], history: list[dict[str, float]]) -> Path:
    """Write a bundle folder (created if needed; files of an older bundle there are replaced)."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, str(out / "model.safetensors"))
    header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "mmfuse_version": __version__,
              "weights_sha256": sha256_file(out / "model.safetensors")}
    write_json(out / "config.json", {**header, **config})
    write_json(out / "processors.json", processors)
    write_json(out / "metrics.json", metrics)
    write_json(out / "data_report.json", data_report)
    pd.DataFrame(history).to_csv(out / "training_log.csv", index=False)
    return out


def read_bundle_config(path: str | Path) -> dict[str, Any]:
    """config.json of a bundle, with its format checked (no weights read)."""
    folder = Path(path)
    if not folder.is_dir():
        raise BundleError(f"model folder not found: {folder}")
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise BundleError(f"{folder} is not a complete mmfuse model: missing {', '.join(missing)}")
    try:
        config = json.loads((folder / "config.json").read_text())
    except json.JSONDecodeError as err:
        raise BundleError(f"{folder / 'config.json'} is not valid JSON: {err}") from None
    if config.get("format") != FORMAT_NAME:
        raise BundleError(f"{folder} is not an mmfuse model (config.json has no 'format: {FORMAT_NAME}')")
    if config.get("format_version") not in READABLE_VERSIONS:
        raise BundleError(f"{folder} uses bundle format version {config.get('format_version')!r}; this mmfuse "
                          f"({__version__}) reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    if config.get("mmfuse_version") != __version__:
        warnings.warn(f"{folder} was saved by mmfuse {config.get('mmfuse_version')}, this is {__version__}",
                      stacklevel=2)
    return config


@dataclass
class BundleContents:
    format_version: int
    config: dict[str, Any]
    processors: dict[str, Any]
    weights: dict[str, Tensor]
    metrics: dict[str, Any]
    data_report: dict[str, Any]
    history: list[dict[str, float]]


def _optional_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.is_file() else default


def load_bundle(path: str | Path) -> BundleContents:
    """Read and verify a bundle (format version and weights checksum)."""
    folder = Path(path)
    config = read_bundle_config(folder)
    if sha256_file(folder / "model.safetensors") != config.get("weights_sha256"):
        raise BundleError(f"{folder / 'model.safetensors'} does not match the checksum in config.json "
                          "(the file was changed or is corrupt)")
    log = folder / "training_log.csv"
    history = pd.read_csv(log).to_dict("records") if log.is_file() and log.stat().st_size > 1 else []
    return BundleContents(config["format_version"], config, json.loads((folder / "processors.json").read_text()),
                          load_file(str(folder / "model.safetensors")), _optional_json(folder / "metrics.json", {}),
                          _optional_json(folder / "data_report.json", {}), history)


def load_weights(model: nn.Module, weights: dict[str, Tensor], path: str | Path) -> None:
    """Put a bundle's weights into the model its config rebuilt (eval mode); a mismatch is a clear BundleError."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise BundleError(f"{path}: the weights do not fit the model its config describes (saved by another "
                          f"mmfuse version?): {str(err).splitlines()[0]}") from None
    model.eval()
