"""The plugin boundary: a modality defined entirely here (detection rule, processor, encoder, corruption) works through
fit, save, load, predict and robustness without any change under src/.

The modality is ``colour``: cells such as ``#ff8800``, read as three numbers in [0, 1].
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import Tensor, nn

from mmfuse import BundleError, ConfigError, Predictor
from mmfuse.analysis.robustness import robustness
from mmfuse.core.modality import Modality, nonempty_strings
from mmfuse.core.processor import EMPTY, UNREADABLE, Problem, Processor, Transformed, is_empty
from mmfuse.registry import ENCODERS, MODALITIES, PROCESSORS

HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def looks_like_colours(values: pd.Series) -> str | None:
    strings = nonempty_strings(values).head(200)
    return "#rrggbb colours" if len(strings) and strings.str.match(HEX).mean() >= 0.8 else None


class ColourProcessor(Processor):
    """#rrggbb -> (N, 3) floats in [0, 1]; anything else is unreadable."""

    kind, modality = "colour", "colour"

    def __init__(self, column: str):
        self.column = column

    def fit(self, values, root, progress=None):
        self.seen_ = int(sum(not is_empty(v) for v in values))
        return self

    def transform(self, values, root, progress=None):
        out = torch.zeros(len(values), 3)
        present = torch.ones(len(values), dtype=torch.bool)
        problems = []
        for i, v in enumerate(values):
            if is_empty(v) or not HEX.match(str(v)):
                present[i] = False
                kind = EMPTY if is_empty(v) else UNREADABLE
                problems.append(Problem(i, self.column, kind, f"not a colour: {v!r}"))
                continue
            out[i] = torch.tensor([int(str(v)[k:k + 2], 16) / 255 for k in (1, 3, 5)])
        return Transformed(out, present, problems)

    def corruptions(self):
        return {"noise": lambda x, level, gen: x + level * torch.randn(x.shape, generator=gen)}


class ColourEncoder(nn.Module):
    """(B, 3) -> (B, width)."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, width), nn.GELU())
        self.output_dim = width

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def register_colour_plugin() -> None:
    """What a user's plugin module does on import."""
    PROCESSORS.add("colour", ColourProcessor)
    ENCODERS.add("colour_mlp", ColourEncoder, modality="colour")
    MODALITIES.add("colour", Modality("colour", input="colour", processor="colour", default_encoder="colour_mlp",
                                      detect=looks_like_colours, priority=25))


def unregister_colour_plugin() -> None:
    """A fresh process, as far as the plugin is concerned."""
    for registry, name in ((PROCESSORS, "colour"), (ENCODERS, "colour_mlp"), (MODALITIES, "colour")):
        registry._items.pop(name, None)


@pytest.fixture
def colour_plugin():
    register_colour_plugin()
    yield
    unregister_colour_plugin()


def colour_table(folder: Path, n: int, seed: int) -> Path:
    """The label is whether the colour has more red than not; the word column is noise."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (n, 3))
    colours = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb]
    colours[0] = None  # a missing value
    frame = pd.DataFrame({"colour": colours, "word": rng.choice(["alpha beta", "gamma delta", "epsilon"], n),
                          "y": (rgb[:, 0] > 127).astype(int)})
    path = folder / f"colours_{seed}.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_modality_defined_outside_src_fits_saves_loads_predicts_and_is_analysed(colour_plugin, tmp_path):
    train, test = colour_table(tmp_path, 400, 0), colour_table(tmp_path, 120, 1)
    predictor = Predictor(label="y", preset="fast", config={"train": {"early_stopping": False}}, max_epochs=30, lr=0.01,
                          threads=2, progress=False, verbose=False).fit(train)
    assert {c.name: c.modality for c in predictor.columns_}["colour"] == "colour"
    assert predictor.describe()["inputs"][0]["encoder"] == "colour_mlp"
    assert isinstance(predictor.model_.encoders["colour"], ColourEncoder)
    reported = [r["columns"].get("colour", {}).get("empty", {}).get("rows") for r in predictor.data_report_.values()]
    assert [0] in reported  # the missing colour was masked and reported
    assert predictor.evaluate(test)["accuracy"] > 0.8  # the colour carries the label

    path = predictor.save(tmp_path / "model")
    unregister_colour_plugin()
    with pytest.raises(BundleError, match="unknown processor 'colour'.*after the plugin is imported"):
        Predictor.load(path)
    register_colour_plugin()  # the user imports their plugin again
    loaded = Predictor.load(path, verbose=False)
    assert loaded.predict_proba(test).equals(predictor.predict_proba(test))
    assert loaded.predict_frame(test)["inputs_used"].iloc[0] == "tabular"  # the missing colour is masked

    report = robustness(loaded, test)
    assert set(report.curves["colour"]) == {"noise"}
    assert report.without["colour"] < report.score - 0.2  # without its colour the model is near chance
    assert report.curves["colour"]["noise"][-1] < report.curves["colour"]["noise"][0]


def test_config_accepts_the_plugins_names_once_registered(colour_plugin):
    from mmfuse.config import load_config

    cfg = load_config("fast", {"encoders": {"colour": {"name": "colour_mlp", "params": {"width": 8}}}})
    assert cfg.encoder_for("c", "colour").params == {"width": 8}
    unregister_colour_plugin()
    with pytest.raises(ConfigError, match="unknown encoder 'colour_mlp'"):
        load_config("fast", {"encoders": {"colour": {"name": "colour_mlp"}}})
