"""A fit killed with SIGKILL resumes from its last complete epoch to the very model an uninterrupted fit saves: the
default preset on a grayscale image table (its from-scratch ResNet, ``cnn``: batch norm, augmentation, channels-last
convolutions) plus numeric and categorical columns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_table
from PIL import Image
from safetensors.torch import load_file

from mmfuse import Predictor
from mmfuse.errors import DataError
from mmfuse.io.checkpoint import load_checkpoint

MMFUSE = [str(Path(sys.executable).with_name("mmfuse"))]
ENV = {"PATH": str(Path(sys.executable).parent), "COLUMNS": "200", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume")
    make_table(folder, n=600, seed=0).to_csv(folder / "train.csv", index=False)
    make_table(folder, n=80, seed=1).to_csv(folder / "valid.csv", index=False)
    for path in (folder / "img").glob("*.png"):
        Image.open(path).convert("L").save(path)
    return folder


def fit_args(tables: Path, out: Path, *extra: str) -> list[str]:
    return [*MMFUSE, "fit", str(tables / "train.csv"), "--label", "y", "--valid", str(tables / "valid.csv"),
            "--ignore", "id", "--ignore", "text", "--max-epochs", "6", "--threads", "1", "--seed", "3",
            "--checkpoint-every", "0", "--out", str(out), "--quiet", *extra]


def test_sigkill_after_epoch_2_then_resume_gives_the_same_model(tables, tmp_path):
    whole = tmp_path / "whole"
    subprocess.run(fit_args(tables, whole), check=True, capture_output=True, env=ENV)

    out = tmp_path / "resumed"
    partial = tmp_path / "resumed.partial"
    fit = subprocess.Popen(fit_args(tables, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.monotonic() + 300
    while not list(partial.glob("epoch-0002")) and fit.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(fit.pid, signal.SIGKILL)
    fit.wait()
    killed_at = load_checkpoint(partial)[1]["epoch"]
    assert 2 <= killed_at < 6 and not out.exists(), "the fit was not interrupted mid-training"
    again = subprocess.run(fit_args(tables, out), capture_output=True, text=True, env=ENV)
    assert again.returncode == 2 and load_checkpoint(partial)[1]["epoch"] == killed_at  # neither resumed nor deleted
    assert f"holds an interrupted fit (saved after epoch {killed_at}): continue it with --resume" in again.stderr

    resumed = subprocess.run(fit_args(tables, out, "--resume"), capture_output=True, text=True, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert f"continuing after epoch {killed_at}" in resumed.stderr
    assert not partial.exists()  # removed once the model is saved

    config = json.loads((out / "config.json").read_text())
    assert config["model"]["column_encoders"]["image"]["name"] == "cnn"  # the default's choice for grayscale
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    metrics = [json.loads((m / "metrics.json").read_text()) for m in (whole, out)]
    assert metrics[0]["valid"] == metrics[1]["valid"] and metrics[0]["epochs"] == metrics[1]["epochs"]
    logs = [pd.read_csv(m / "training_log.csv").drop(columns=["seconds", "train_seconds", "valid_seconds"])
            for m in (whole, out)]
    pd.testing.assert_frame_equal(*logs)


def test_resume_refuses_a_checkpoint_of_other_data(tables, tmp_path):
    options = dict(preset="fast", max_epochs=2, threads=2, progress=False, verbose=False, ignore=["id"])
    Predictor(label="y", **options).fit(tables / "train.csv", valid=tables / "valid.csv", checkpoint_dir=tmp_path / "ck")
    assert load_checkpoint(tmp_path / "ck")[1]["epoch"] == 2
    with pytest.raises(DataError, match="written by a fit on other data or settings"):
        Predictor(label="y", **options, seed=9).fit(tables / "train.csv", valid=tables / "valid.csv",
                                              checkpoint_dir=tmp_path / "ck", resume=True)


def test_resume_after_the_last_epoch_only_saves(tables, tmp_path):
    options = dict(preset="fast", max_epochs=2, threads=2, progress=False, verbose=False, ignore=["id"])
    first = Predictor(label="y", **options).fit(tables / "train.csv", valid=tables / "valid.csv",
                                          checkpoint_dir=tmp_path / "ck")
    again = Predictor(label="y", **options).fit(tables / "train.csv", valid=tables / "valid.csv",
                                          checkpoint_dir=tmp_path / "ck", resume=True)
    assert again.metrics_["valid"] == first.metrics_["valid"] and len(again.history_) == 2
