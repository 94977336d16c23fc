"""The command line as a user runs it: fit / evaluate / predict / info, --help everywhere, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from corpus import cli

MMFUSE = [str(Path(sys.executable).with_name("mmfuse"))]
COMMANDS = [[], ["fit"], ["evaluate"], ["predict"], ["info"], ["datasets"], ["datasets", "export"], ["demo"],
            ["serve"], ["export"], ["index"], ["search"], ["sweep"]]


def run(*args, check=True):
    result = subprocess.run(MMFUSE + [str(a) for a in args], capture_output=True, text=True, env={"COLUMNS": "200",
                            "PATH": str(Path(sys.executable).parent)})
    if check and result.returncode != 0:
        raise AssertionError(f"mmfuse {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result


def help_text(*command: str) -> str:
    """``mmfuse COMMAND --help`` in this process (the console script itself: ``test_the_console_script_runs``)."""
    from click.testing import CliRunner

    from mmfuse.cli.main import main

    result = CliRunner().invoke(main, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "mmfuse")
def test_help(command):
    assert "Usage:" in help_text(*command)


def test_the_console_script_runs():
    assert "Usage: mmfuse" in run("--help").stdout


def test_fit_evaluate_predict_info(table_dir, tmp_path):
    """In this process, as the console script runs them (``corpus.cli``); the README test runs the console script."""
    model = tmp_path / "model"
    fit = cli("fit", table_dir / "train.csv", "--label", "y", "--valid", table_dir / "valid.csv", "--out", model,
              "--preset", "fast", "--max-epochs", "3", "--threads", "2", "--ignore", "id", "--encoder", "text=gru",
              "--fusion", "gated", "--column-type", "colour=categorical", "--quiet")
    assert fit.code == 0 and "accuracy" in fit.out and f"saved model to {model}" in fit.out, fit
    evaluated = cli("evaluate", model, table_dir / "test.csv", "--json", "--confusion", tmp_path / "c.png")
    assert set(json.loads(evaluated.out)) >= {"accuracy", "macro_f1", "roc_auc", "log_loss"}
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    preds = tmp_path / "p.csv"
    cli("predict", model, table_dir / "test.csv", "--out", preds, "--keep", "x", "--cache-dir", tmp_path / "cache")
    frame = pd.read_csv(preds)
    assert list(frame.columns) == ["row", "id", "x", "inputs_used", "prediction", "proba_0", "proba_1"]
    assert len(frame) == 60 and frame["x"].tolist() == pd.read_csv(table_dir / "test.csv")["x"].tolist()
    missing = cli("predict", model, table_dir / "test.csv", "--keep", "nope")
    assert missing.code == 2 and "column 'nope' to keep is not in the table" in missing.error_line
    info = cli("info", model).out
    assert "gru" in info and "categorical" in info and "valid" in info and "fusion: gated" in info


def test_errors_are_one_line(table_dir, tmp_path):
    result = run("fit", table_dir / "train.csv", "--label", "nope", "--out", tmp_path / "m", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: train: label column 'nope' not found")
    assert "Traceback" not in result.stderr
    result = cli("evaluate", tmp_path / "nothing", table_dir / "test.csv")
    assert result.code == 2 and "model folder not found" in result.error_line
    result = cli("fit", table_dir / "train.csv", "--label", "y", "--encoder", "textgru")
    assert result.code == 2 and "expected COLUMN=VALUE" in result.error_line
    (tmp_path / "m.partial").mkdir()  # where the fit would keep its state, holding someone else's file
    (tmp_path / "m.partial" / "notes.txt").write_text("mine")
    result = cli("fit", table_dir / "train.csv", "--label", "y", "--out", tmp_path / "m")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result
    assert "m.partial exists and is not an mmfuse checkpoint folder (it holds 'notes.txt')" in result.err
    assert (tmp_path / "m.partial" / "notes.txt").read_text() == "mine" and not (tmp_path / "m").exists()
    pd.read_csv(table_dir / "valid.csv").drop(columns=["x"]).to_csv(tmp_path / "valid-no-x.csv", index=False)
    result = cli("fit", table_dir / "train.csv", "--label", "y", "--valid", tmp_path / "valid-no-x.csv", "--preset",
                 "fast", "--out", tmp_path / "m2")
    assert result.code == 2 and "valid: the training column(s) 'x' are not in the validation table" in result.error_line


@pytest.mark.parametrize("command, option, value, says", [
    ("fit", "--time-limit", "inf", "'inf' is not a finite number"),
    ("fit", "--time-limit", "nan", "'nan' is not a finite number"),
    ("fit", "--lr", "inf", "'inf' is not a finite number"),
    ("fit", "--modality-dropout", "nan", "'nan' is not a finite number"),
    ("fit", "--seed", "-1", "-1 is not in the range 0<=x<=4294967295"),
    ("fit", "--seed", "1e20", "'1e20' is not a valid integer"),
    ("sweep", "--seeds", "0,-1", "-1 is not in the range 0<=x<=4294967295"),
    ("serve", "--max-body-mb", "nan", "'nan' is not a finite number"),
    ("serve", "--max-megapixels", "inf", "'inf' is not a finite number"),
    ("serve", "--timeout", "inf", "'inf' is not a finite number"),
])
def test_numeric_options_are_finite_and_in_range(table_dir, tmp_path, command, option, value, says):
    """nan passes every bound of a range and inf any range without an upper one: each is refused in one line
    naming the option, before anything is read."""
    args = {"fit": ["fit", table_dir / "train.csv", "--label", "y", "--out", tmp_path / "m"],
            "sweep": ["sweep", table_dir / "train.csv", "--label", "y", "--test", table_dir / "test.csv"],
            "serve": ["serve", tmp_path]}[command]
    result = cli(*args, option, value)
    assert result.code == 2 and f"Invalid value for '{option}': {says}" in result.error_line, result


@pytest.mark.parametrize("command", [["fit"], ["sweep"]])
def test_help_lists_what_the_registries_hold(command):
    from mmfuse.config import list_presets
    from mmfuse.registry import MODALITIES, list_encoders, list_fusions

    text = " ".join(help_text(*command).split())  # the help, unwrapped
    names = [*list_presets(), *list_fusions()] + ([*list_encoders(), *MODALITIES.names()] if command == ["fit"] else [])
    missing = [n for n in names if n not in text.replace(",", " ").replace(";", " ").replace(".", " ").split()]
    assert not missing, f"mmfuse {command[0]} --help does not name {missing}"
