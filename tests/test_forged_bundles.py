"""A model folder is data: forged folders, re-sealed so every checksum matches, are refused in one line by ``info``,
``predict`` and ``Predictor.load``, or (where only a member is forged) described by ``info``, which parses no member;
never a crash of the process, a traceback, an allocation of gigabytes or an imported module. They run in child
processes, batched: a forged folder that crashed its child fails its own test, and the next child goes on after it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_table
from forge import edit_json, reseal

from mmfuse import Predictor

TESTS = Path(__file__).parent


def lightgbm_text(change):
    """A forgery of the lightgbm member's first model text (``change(text) -> text``)."""
    def forge(folder: Path) -> None:
        def edit(portfolio):
            models = portfolio["members"]["lightgbm"]["fitted"]["models"]
            models[0] = change(models[0])
        edit_json(folder, "portfolio.json", edit)
    return forge


def replace_line(key: str, value: str):
    """The first tree's ``key=`` line with its first value set to ``value``."""
    def change(text: str) -> str:
        head, _, trees = text.partition("\nTree=0\n")
        before, _, rest = trees.partition(f"\n{key}=")
        line, _, after = rest.partition("\n")
        return f"{head}\nTree=0\n{before}\n{key}={' '.join([value, *line.split(' ')[1:]])}\n{after}"
    return change


def deep_json(name: str):
    def forge(folder: Path) -> None:
        (folder / name).write_text("[" * 100_000 + "]" * 100_000)
        reseal(folder)
    return forge


def add_plugin(folder: Path) -> None:
    edit_json(folder, "config.json", lambda config: config.update(plugins=["side_effect"]))


def drop_members(folder: Path) -> None:
    edit_json(folder, "config.json", lambda config: config.pop("members"))


# case -> (forgery, where info refuses too (else it describes the folder), what the refusal says)
FORGERIES = {
    "config names a module with import-time effects": (add_plugin, False, "needs the plugin 'side_effect'"),
    "members deleted from config.json": (drop_members, True, "names no members"),
    "config.json nested 100,000 deep": (deep_json("config.json"), True, "nested 100000 levels deep"),
    "processors.json nested 100,000 deep": (deep_json("processors.json"), False, "nested 100000 levels deep"),
    "portfolio.json nested 100,000 deep": (deep_json("portfolio.json"), True, "nested 100000 levels deep"),
    "a tree's child index out of range": (lightgbm_text(replace_line("left_child", "7")), False,
                                          "do not form a tree"),
    "a tree's children in a cycle": (lightgbm_text(replace_line("right_child", "0")), False,
                                     "do not form a tree"),
    "a split on a feature the model lacks": (lightgbm_text(replace_line("split_feature", "99999")), False,
                                             "splits on a feature"),
    "truncated model text": (lightgbm_text(lambda t: t[:len(t) // 2]), False, "LightGBM"),
    "num_class=1000000000": (lightgbm_text(lambda t: t.replace("num_class=1\n", "num_class=1000000000\n")), False,
                             "num_class"),
    "garbage model text": (lightgbm_text(lambda t: "tree\nversion=v4\n\udcff\x01" * 50), False, "LightGBM"),
}

CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from corpus import cli
import mmfuse
table, cases = sys.argv[2], sys.argv[3:]
for folder in cases:
    result = {}
    for command in ("info", "predict"):
        args = (command, folder) + ((table, "--out", folder + ".csv") if command == "predict" else ())
        outcome = cli(*args)
        result[command] = [outcome.code, outcome.error_line or "", "Traceback" in outcome.out + outcome.err]
    try:
        mmfuse.Predictor.load(folder, verbose=False)
        result["load"] = [0, "", False]
    except mmfuse.MMFuseError as err:
        result["load"] = [2, f"error: {err}", False]
    except BaseException as err:
        result["load"] = [1, f"{type(err).__name__}: {err}", True]
    print(json.dumps([folder, result]), flush=True)
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Each forged folder -> what info, predict and load did, from children that go on after one that crashed."""
    root = tmp_path_factory.mktemp("forged")
    make_table(root, n=120, seed=0).to_csv(root / "train.csv", index=False)
    model = Predictor(label="y", preset="fast", max_epochs=1, members=["lightgbm", "network"], threads=2,
                      progress=False, verbose=False, ignore=["id"]).fit(root / "train.csv").save(root / "model")
    (root / "side_effect.py").write_text(f"open({str(root / 'ran')!r}, 'w').close()\n")
    folders = []
    for k, (forge, _, _) in enumerate(FORGERIES.values()):
        shutil.copytree(model, root / f"forged{k}")
        forge(root / f"forged{k}")
        folders.append(str(root / f"forged{k}"))
    results, todo = {}, list(folders)
    while todo:
        child = subprocess.run([sys.executable, "-c", CHILD, str(TESTS), str(root / "train.csv"), *todo],
                               capture_output=True, text=True, timeout=300, cwd=root,
                               env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(root)})
        for line in child.stdout.splitlines():
            folder, result = json.loads(line)
            results[folder] = result
        done = [f for f in todo if f in results]
        if len(done) < len(todo):  # the child died on the next folder: record it, go on after it
            results[todo[len(done)]] = {"crash": [child.returncode, child.stderr[-300:], True]}
        todo = todo[len(done) + 1:] if len(done) < len(todo) else []
    return {case: results[folder] for case, folder in zip(FORGERIES, folders)}, root


@pytest.mark.parametrize("case", FORGERIES)
def test_a_forged_model_folder_is_refused_cleanly(outcomes, case):
    results, root = outcomes
    _, info_refuses, detail = FORGERIES[case]
    result = results[case]
    assert "crash" not in result, (case, result)
    for command, (code, line, traceback) in result.items():
        assert not traceback, (case, command, line)
        if command == "info" and not info_refuses:
            assert code == 0, (case, line)  # info parses no member and imports no plugin
        else:
            assert code == 2 and line.startswith("error: ") and detail in line, (case, command, line)
    assert not (root / "ran").exists()  # no module named by a folder was imported
