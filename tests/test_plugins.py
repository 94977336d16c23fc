"""Plugins end to end: a modality defined outside mmfuse (``tests/plugins/colour.py``, the README's example: detection
rule, processor, encoder, corruption, how its cells are served) works through fit, save, load, predict, robustness,
the CLI (``--plugin``, ``MMFUSE_PLUGINS``, ``info``, ``--help``), an entry point, and ``/predict``; a saved model
records the plugin and loading it imports it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from corpus import cli
from forge import edit_json

from mmfuse import ConfigError, Predictor
from mmfuse.analysis.robustness import robustness
from mmfuse.plugins import PluginError, installed_plugins, load_plugins
from mmfuse.registry import ENCODERS, MODALITIES, PROCESSORS

TESTS = Path(__file__).parent
PLUGIN = "plugins.colour"
MMFUSE = [str(Path(sys.executable).with_name("mmfuse"))]


def unregister_colour_plugin() -> None:
    """A fresh process, as far as the plugin is concerned."""
    for registry, name in ((PROCESSORS, "colour"), (ENCODERS, "colour_mlp"), (MODALITIES, "colour")):
        registry._items.pop(name, None)
    sys.modules.pop(PLUGIN, None)


@pytest.fixture
def colour_plugin():
    load_plugins([PLUGIN])
    yield sys.modules[PLUGIN]
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


SETTINGS = dict(preset="fast", config={"train": {"early_stopping": False}}, max_epochs=30, lr=0.01, threads=2,
                progress=False, verbose=False)


def test_a_modality_defined_outside_src_fits_saves_loads_predicts_and_is_analysed(colour_plugin, tmp_path):
    train, test = colour_table(tmp_path, 400, 0), colour_table(tmp_path, 120, 1)
    predictor = Predictor(label="y", **SETTINGS).fit(train)
    assert {c.name: c.modality for c in predictor.columns_}["colour"] == "colour"
    assert predictor.describe()["inputs"][0]["encoder"] == "colour_mlp"
    assert isinstance(predictor.model_.encoders["colour"], colour_plugin.ColourEncoder)
    reported = [r["columns"].get("colour", {}).get("empty", {}).get("rows") for r in predictor.data_report_.values()]
    assert [0] in reported  # the missing colour was masked and reported
    assert predictor.evaluate(test)["accuracy"] > 0.8  # the colour carries the label

    path = predictor.save(tmp_path / "model")
    assert json.loads((path / "config.json").read_text())["plugins"] == [PLUGIN]
    unregister_colour_plugin()
    loaded = Predictor.load(path, verbose=False)  # imports the plugin the model names
    assert "colour" in MODALITIES and loaded.describe()["plugins"] == [PLUGIN]
    assert loaded.predict_proba(test).equals(predictor.predict_proba(test))
    assert loaded.predict_frame(test)["inputs_used"].iloc[0] == "tabular"  # the missing colour is masked

    report = robustness(loaded, test)
    assert set(report.curves["colour"]) == {"noise"}
    assert report.without["colour"] < report.score - 0.2  # without its colour the model is near chance
    assert report.curves["colour"]["noise"][-1] < report.curves["colour"]["noise"][0]


def test_a_model_whose_plugin_cannot_be_imported_says_which(colour_plugin, tmp_path):
    path = Predictor(label="y", **{**SETTINGS, "max_epochs": 1}).fit(colour_table(tmp_path, 60, 0)).save(tmp_path / "m")
    edit_json(path, "config.json", lambda config: config.update(plugins=["no_such_plugin"]))
    with pytest.raises(PluginError, match=r"needs the plugin 'no_such_plugin', which is not imported: a model folder "
                                          r"never imports code by itself, so allow it with mmfuse --plugin"):
        Predictor.load(path)
    with pytest.raises(PluginError, match=r"needs the plugin 'no_such_plugin', which could not be imported "
                                          r"\(ModuleNotFoundError: .*\): make it importable: run with PYTHONPATH=\."):
        Predictor.load(path, plugins=["no_such_plugin"])


def test_config_accepts_the_plugins_names_once_registered(colour_plugin):
    from mmfuse.config import load_config

    cfg = load_config("fast", {"encoders": {"colour": {"name": "colour_mlp", "params": {"width": 8}}}})
    assert cfg.encoder_for("c", "colour").params == {"width": 8}
    unregister_colour_plugin()
    with pytest.raises(ConfigError, match="unknown encoder 'colour_mlp'"):
        load_config("fast", {"encoders": {"colour": {"name": "colour_mlp"}}})


def run(*args: object, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(MMFUSE + [str(a) for a in args], capture_output=True, text=True,
                          env={"PATH": str(Path(sys.executable).parent), "COLUMNS": "200", "HF_HUB_OFFLINE": "1",
                               "PYTHONPATH": str(TESTS), **env})


def test_a_model_folder_imports_its_plugin_only_when_the_user_allows_it(colour_plugin, tmp_path, monkeypatch):
    """A model folder is data: a module it names is imported only by --plugin, MMFUSE_PLUGINS, an entry point or
    plugins= (here a module with an import-time effect, as a forged config.json could name); info needs none, in a
    process that has no plugin on its path. (The README test fits with ``--plugin`` and predicts from the command
    line.)"""
    assert "colour_mlp" in run("--plugin", PLUGIN, "fit", "--help").stdout
    model, table = tmp_path / "model", colour_table(tmp_path, 60, 0)
    Predictor(label="y", **{**SETTINGS, "max_epochs": 1}).fit(table).save(model)
    (tmp_path / "side_effect.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    edit_json(model, "config.json", lambda config: config["plugins"].append("side_effect"))
    about = run("info", model, PYTHONPATH="")
    assert about.returncode == 0 and "plugins: plugins.colour, side_effect" in about.stdout, about.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    refused = cli("predict", model, table, "--out", tmp_path / "p.csv")
    assert refused.code == 2 and "needs the plugin 'side_effect', which is not imported" in refused.error_line
    assert "--plugin side_effect" in refused.error_line and not (tmp_path / "ran").exists()
    monkeypatch.setenv("MMFUSE_PLUGINS", "side_effect")
    allowed = cli("predict", model, table, "--out", tmp_path / "p.csv")
    sys.modules.pop("side_effect", None)
    assert allowed.code == 0 and (tmp_path / "ran").exists() and (tmp_path / "p.csv").is_file()


@pytest.mark.parametrize("how", ["option", "variable"])
def test_a_plugin_the_user_names_that_cannot_be_imported_stops_the_command(tmp_path, how):
    """Named with --plugin or MMFUSE_PLUGINS but not importable (here: not on the path): one line that says how to
    make it importable, exit 2, nothing fitted (the colour column is never read as an ID column in its place)."""
    train = colour_table(tmp_path, 40, 0)
    args = ["fit", train, "--label", "y", "--preset", "fast", "--out", tmp_path / "model"]
    broken = run(*(["--plugin", "colour", *args] if how == "option" else args),
                 **({"MMFUSE_PLUGINS": "colour"} if how == "variable" else {}))
    lines = [line for line in broken.stderr.splitlines() if line.strip()]
    assert broken.returncode == 2 and len(lines) == 1, broken.stderr
    assert lines[0].startswith("error: plugin 'colour' could not be imported (ModuleNotFoundError")
    assert "PYTHONPATH=." in lines[0] and "pip install -e" in lines[0]
    assert not (tmp_path / "model").exists()


def test_an_entry_point_plugin_loads_first(tmp_path, monkeypatch):
    dist = tmp_path / "mmfuse_colour-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mmfuse-colour\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[mmfuse.plugins]\ncolour = {PLUGIN}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    installed_plugins.cache_clear()  # entry points are read once per process: this one was installed since
    try:
        assert "colour" not in MODALITIES
        assert PLUGIN in load_plugins()
        assert "colour" in MODALITIES and "colour_mlp" in ENCODERS
    finally:
        unregister_colour_plugin()
        installed_plugins.cache_clear()  # read again without it (monkeypatch takes its folder off the path)


def test_the_readme_example_is_the_plugin_the_tests_run():
    readme = (TESTS.parent / "README.md").read_text()
    section = readme[readme.index("### Your own modality: a plugin"):]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert example.strip() == (TESTS / "plugins" / "colour.py").read_text().strip()


def test_serving_takes_no_modality_names():
    """serve/ learns how to take and draw each column from its modality's registration, never by name."""
    names = "|".join(MODALITIES.names())
    serve = Path(__import__("mmfuse.serve").serve.__file__).parent
    hits = [f"{path.name}:{n}: {line.strip()}" for path in [*serve.glob("*.py"), *serve.glob("static/*")]
            for n, line in enumerate(path.read_text().splitlines(), 1)
            if re.search(rf"""["']({names})["']""", line) and not re.search(r"""el\(["']audio["']""", line)
            and not line.strip().startswith(("POST", "GET", "#", "//"))]
    assert not hits, hits


@pytest.mark.parametrize("body, reason", [("import sys\nsys.exit(0)\n", "SystemExit: 0"),
                                          ("raise KeyboardInterrupt\n", "KeyboardInterrupt")])
def test_a_plugin_that_exits_or_is_interrupted_at_import_is_one_error(tmp_path, monkeypatch, body, reason):
    """Not a silent exit 0 with no model, nor click's bare "Aborted!"."""
    (tmp_path / "abrupt_plugin.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=re.escape(f"plugin 'abrupt_plugin' could not be imported ({reason}): "
                                                    "fix the error in the module")):
        load_plugins(["abrupt_plugin"])


def warm_cool_table(folder: Path, n: int, seed: int) -> Path:
    """Warm (more red than blue, 70% of rows) or cool colours, one colour column: the plugin's input alone."""
    rng = np.random.default_rng(seed)
    warm = rng.random(n) < 0.7
    red, blue = rng.integers(0, 256, n), rng.integers(0, 256, n)
    red, blue = np.where(warm, np.maximum(red, blue), np.minimum(red, blue)), np.where(warm, np.minimum(red, blue),
                                                                                      np.maximum(red, blue))
    green = rng.integers(0, 256, n)
    frame = pd.DataFrame({"colour": [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in zip(red, green, blue)],
                          "y": np.where(warm, "warm", "cool")})
    path = folder / f"warm_{seed}.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_plugins_input_reaches_every_member_through_the_default_flat_view(colour_plugin, tmp_path, caplog):
    """The plugin's processor gives no flat view of its own: its three numbers reach the linear and tree members as
    the default ``dense`` view, so the default preset learns the table (the network alone stayed at the majority
    share); without the network and a view, the log names the input no member reads."""
    train, test = warm_cool_table(tmp_path, 300, 0), warm_cool_table(tmp_path, 200, 1)
    predictor = Predictor(label="y", threads=2, progress=False, verbose=False).fit(train)
    assert predictor.evaluate(test)["accuracy"] >= 0.90
    assert predictor.importance(test, repeats=2)["importance"]["colour"] > 0.2
    noisy = tmp_path / "noisy.csv"
    pd.read_csv(train).assign(x=np.random.default_rng(2).normal(size=300)).to_csv(noisy, index=False)
    with pytest.MonkeyPatch.context() as patch, caplog.at_level("WARNING", logger="mmfuse"):
        patch.setattr(colour_plugin.ColourProcessor, "flat_view", False)
        Predictor(label="y", members=["lightgbm"], threads=2, progress=False).fit(noisy)
    assert "input 'colour' ('colour'): no member reads it" in caplog.text
