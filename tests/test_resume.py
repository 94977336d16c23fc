"""A fit killed with SIGKILL resumes from its last complete epoch to the very model an uninterrupted fit saves: the
default preset on a grayscale image table (its from-scratch ResNet, ``cnn``: batch norm, augmentation, channels-last
convolutions) plus numeric and categorical columns."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
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
    make_table(folder, n=300, seed=0).to_csv(folder / "train.csv", index=False)
    make_table(folder, n=80, seed=1).to_csv(folder / "valid.csv", index=False)
    for path in (folder / "img").glob("*.png"):
        Image.open(path).convert("L").save(path)
    return folder


def fit_args(tables: Path, out: Path, *extra: str) -> list[str]:
    return [*MMFUSE, "fit", str(tables / "train.csv"), "--label", "y", "--valid", str(tables / "valid.csv"),
            "--ignore", "id", "--ignore", "text", "--max-epochs", "4", "--threads", "1", "--seed", "3",
            "--checkpoint-every", "0", "--out", str(out), "--quiet", *extra]


def test_sigkill_after_epoch_2_then_resume_gives_the_same_model(tables, tmp_path):
    """The network alone (a portfolio's members resume in the next test)."""
    whole, network = tmp_path / "whole", ("--members", "network")
    subprocess.run(fit_args(tables, whole, *network), check=True, capture_output=True, env=ENV)

    out = tmp_path / "resumed"
    partial = tmp_path / "resumed.partial"
    fit = subprocess.Popen(fit_args(tables, out, *network), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=ENV)
    deadline = time.monotonic() + 300
    while not list(partial.glob("epoch-0002")) and fit.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(fit.pid, signal.SIGKILL)
    fit.wait()
    killed_at = load_checkpoint(partial)[1]["epoch"]
    assert 2 <= killed_at < 4 and not out.exists(), "the fit was not interrupted mid-training"
    again = subprocess.run(fit_args(tables, out, *network), capture_output=True, text=True, env=ENV)
    assert again.returncode == 2 and load_checkpoint(partial)[1]["epoch"] == killed_at  # neither resumed nor deleted
    assert f"holds an interrupted fit (saved after epoch {killed_at}): continue it with --resume" in again.stderr

    resumed = subprocess.run(fit_args(tables, out, *network, "--resume"), capture_output=True, text=True, env=ENV)
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


@pytest.mark.parametrize("change, named", [
    (dict(seed=9), "the settings"),
    (dict(column_types={"x": "categorical"}), "the column types"),
    (dict(ignore=["id", "colour"]), "the ignored columns"),
    (dict(on_bad_row="skip"), "--on-bad-row"),
    (dict(class_weight="balanced"), "the row weights and the metric"),
    (dict(eval_metric="log_loss"), "the row weights and the metric"),
    (dict(valid="train.csv"), "the validation rows"),
])
def test_resume_refuses_a_checkpoint_of_other_data_naming_what_changed(tables, tmp_path, change, named):
    options = dict(preset="fast", max_epochs=2, threads=2, progress=False, verbose=False, ignore=["id"])
    Predictor(label="y", **options).fit(tables / "train.csv", valid=tables / "valid.csv", checkpoint_dir=tmp_path / "ck")
    assert load_checkpoint(tmp_path / "ck")[1]["epoch"] == 2
    valid = tables / change.pop("valid", "valid.csv")
    with pytest.raises(DataError, match=f"cannot resume from .*: (.*, )?{re.escape(named)}") as err:
        Predictor(label="y", **{**options, **change}).fit(tables / "train.csv", valid=valid,
                                                          checkpoint_dir=tmp_path / "ck", resume=True)
    assert "changed since the interrupted fit" in str(err.value) and "\n" not in str(err.value)


def test_resume_refuses_when_a_file_the_table_names_changed(tables, tmp_path):
    copy = tmp_path / "tables"
    shutil.copytree(tables, copy)
    options = dict(preset="fast", max_epochs=2, threads=2, progress=False, verbose=False, ignore=["id"])
    Predictor(label="y", **options).fit(copy / "train.csv", valid=copy / "valid.csv", checkpoint_dir=tmp_path / "ck")
    image = copy / pd.read_csv(copy / "train.csv")["image"].iloc[0]
    image.write_bytes(image.read_bytes() + b"\0")  # the same name, other bytes
    with pytest.raises(DataError, match="the files the tables name .* changed since the interrupted fit"):
        Predictor(label="y", **options).fit(copy / "train.csv", valid=copy / "valid.csv",
                                            checkpoint_dir=tmp_path / "ck", resume=True)


def test_resume_after_the_last_epoch_only_saves(tables, tmp_path):
    options = dict(preset="fast", max_epochs=2, threads=2, progress=False, verbose=False, ignore=["id"])
    first = Predictor(label="y", **options).fit(tables / "train.csv", valid=tables / "valid.csv",
                                          checkpoint_dir=tmp_path / "ck")
    again = Predictor(label="y", **options).fit(tables / "train.csv", valid=tables / "valid.csv",
                                          checkpoint_dir=tmp_path / "ck", resume=True)
    assert again.metrics_["valid"] == first.metrics_["valid"] and len(again.history_) == 2


def portfolio_state(folder: Path) -> tuple[dict, dict]:
    """A saved portfolio's members (settings, fitted values, LightGBM's text), weights and temperatures, and its
    arrays (the leaderboard's seconds left out: they are timings)."""
    from safetensors.numpy import load_file as load_arrays

    meta = json.loads((folder / "portfolio.json").read_text())
    return {k: meta[k] for k in ("members", "weights", "temperatures")}, load_arrays(str(folder / "portfolio.safetensors"))


def test_sigkill_after_a_member_then_resume_gives_the_same_portfolio(tables, tmp_path):
    """Killed once the first cheap member is saved (the next one fitting, or the network training): the resumed fit
    loads the saved members, refits none of them, and saves the model an uninterrupted fit saves."""
    members = ["--members", "ngram_linear,lightgbm,network", "--preset", "fast"]
    whole = tmp_path / "whole"
    subprocess.run(fit_args(tables, whole, *members), check=True, capture_output=True, env=ENV)

    out, partial = tmp_path / "resumed", tmp_path / "resumed.partial"
    fit = subprocess.Popen(fit_args(tables, out, *members), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=ENV)
    deadline = time.monotonic() + 300
    while not (partial / "members" / "ngram_linear").is_dir() and fit.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(fit.pid, signal.SIGKILL)
    fit.wait()
    assert not out.exists(), "the fit was not interrupted"
    again = subprocess.run(fit_args(tables, out, *members), capture_output=True, text=True, env=ENV)
    assert again.returncode == 2 and "holds an interrupted fit" in again.stderr  # neither resumed nor deleted

    resumed = subprocess.run(fit_args(tables, out, *members, "--resume"), capture_output=True, text=True, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert "resume: member ngram_linear as fitted before the interruption" in resumed.stderr
    meta, arrays = portfolio_state(whole)
    meta_again, arrays_again = portfolio_state(out)
    assert meta == meta_again and arrays.keys() == arrays_again.keys()
    assert all((arrays[k] == arrays_again[k]).all() for k in arrays)
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_each_member_kind_resumes_without_refitting(tables, tmp_path, monkeypatch):
    """In process: a fit with a checkpoint folder saves every cheap member (a linear one on n-grams, one on frozen
    embeddings, LightGBM); resuming loads them all (a refit would raise) and ends with the same portfolio."""
    from test_pretrained import save_tiny_hf_model

    from mmfuse.portfolio.linear import LinearLearner
    from mmfuse.portfolio.trees import LightGBMLearner

    tiny = save_tiny_hf_model(tmp_path / "bert")
    options = dict(label="y", preset="fast", max_epochs=2, threads=2, progress=False, verbose=False, ignore=["id"],
                   encoders={"text": f"text_hf:{tiny}"}, cache_dir=tmp_path / "cache",
                   members=["ngram_linear", "embedding_linear", "lightgbm", "network"])
    train, valid = tables / "valid.csv", tables / "train.csv"  # the small table to train: quicker
    first = Predictor(**options).fit(train, valid=valid, checkpoint_dir=tmp_path / "ck")
    cheap = {n for n, m in first.portfolio_.members.items() if not m.saved_apart}  # the network resumes apart
    assert cheap == {"ngram_linear", "embedding_linear", "lightgbm"}

    def refit(*args, **kwargs):
        raise AssertionError("a saved member was fitted again")

    monkeypatch.setattr(LinearLearner, "fit", refit)
    monkeypatch.setattr(LightGBMLearner, "fit", refit)
    again = Predictor(**options).fit(train, valid=valid, checkpoint_dir=tmp_path / "ck", resume=True)
    (meta, arrays), (meta_again, arrays_again) = first.portfolio_.state(), again.portfolio_.state()
    assert meta["members"] == meta_again["members"] and meta["weights"] == meta_again["weights"]
    assert all(np.array_equal(arrays[k], arrays_again[k]) for k in arrays)
    assert again.portfolio_.members["lightgbm"].fitted["models"] == first.portfolio_.members["lightgbm"].fitted["models"]
