"""Distributed training on CPU: ``mmfuse fit --devices 2 --strategy ddp`` (two gloo processes) trains a model as good
as one process with the same seed and global batch, and only rank 0 writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_tables

from mmfuse import Predictor

MMFUSE = str(Path(sys.executable).with_name("mmfuse"))
ENV = {"PATH": str(Path(sys.executable).parent), "COLUMNS": "200", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return write_tables(tmp_path_factory.mktemp("ddp"), train=480, valid=120, test=200)


def fit(tables: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    ignore = ["--ignore", "image"] if "--stream" not in extra else []
    return subprocess.run([MMFUSE, "fit", str(tables / "train.csv"), "--label", "y", "--valid",
                           str(tables / "valid.csv"), "--ignore", "id", *ignore, "--preset", "fast",
                           "--max-epochs", "6", "--batch-size", "64", "--seed", "0", "--threads", "1",
                           "--checkpoint-every", "0", "--out", str(out), *extra],
                          capture_output=True, text=True, env=ENV, timeout=600)


@pytest.fixture(scope="module")
def one_and_two(tables, tmp_path_factory):
    """The same fit (the network and two cheap members) in one process and in two DDP processes."""
    folder = tmp_path_factory.mktemp("fits")
    members = ("--members", "ngram_linear,lightgbm,network")
    return folder, fit(tables, folder / "one", *members), fit(tables, folder / "two", *members, "--devices", "2",
                                                               "--strategy", "ddp")


def test_two_process_ddp_matches_one_process(tables, one_and_two):
    folder, single, ddp = one_and_two
    assert single.returncode == 0, single.stderr
    assert ddp.returncode == 0, ddp.stderr
    assert ddp.stdout.count("saved model to") == 1  # rank 1 neither saves nor reports
    assert sorted(p.name for p in folder.iterdir()) == ["one", "two"]  # no staging or checkpoint folder left
    scores = [Predictor.load(folder / m, verbose=False).evaluate(tables / "test.csv")["accuracy"]
              for m in ("one", "two")]
    assert abs(scores[0] - scores[1]) <= 0.02, scores
    assert [json.loads((folder / m / "metrics.json").read_text())["processes"] for m in ("one", "two")] == [1, 2]
    config = json.loads((folder / "two" / "config.json").read_text())
    assert config["model"]["train"]["devices"] == 2 and config["model"]["train"]["strategy"] == "ddp"


def test_resume_under_ddp_says_it_is_not_supported(tables, tmp_path):
    result = fit(tables, tmp_path / "m", "--devices", "2", "--strategy", "ddp", "--resume")
    assert result.returncode == 2 and "--resume is not supported with several devices" in result.stderr


def test_ddp_with_streamed_images_fills_the_sample_cache_once(tables, tmp_path):
    """Rank 0 preprocesses before Lightning starts rank 1, which finds every streamed input in the sample cache."""
    cache = tmp_path / "cache"
    result = fit(tables, tmp_path / "m", "--devices", "2", "--strategy", "ddp", "--stream", "on", "--cache-dir",
                 str(cache), "--max-epochs", "2")
    assert result.returncode == 0, result.stderr
    for split in ("train", "valid"):
        lines = [line for line in result.stderr.splitlines() if line.startswith(f"{split}: input 'image' streamed")]
        assert len(lines) == 2 and sum("(filled," in line for line in lines) == 1, lines
        assert sum("(hit," in line for line in lines) == 1
    assert len(list((cache / "samples").iterdir())) == 2 + 2  # two entries, and their two lock files


def test_ddp_fits_the_cheap_members_once_and_the_ranks_weigh_them_alike(tables, one_and_two):
    """Rank 0 fits the cheap members before training; rank 1, started by Lightning, receives them as training starts
    (it fits none), and both ranks weigh the same members the same way after it."""
    ddp = one_and_two[2]
    assert ddp.returncode == 0, ddp.stderr
    lines = ddp.stderr.splitlines()
    for member in ("ngram_linear", "lightgbm"):
        assert sum(line.startswith(f"member {member}: valid") for line in lines) == 1, member
    ensembles = [line for line in lines if line.startswith("ensemble: ")]
    assert len(ensembles) == 2 and ensembles[0] == ensembles[1], ensembles
    saved = Predictor.load(one_and_two[0] / "two", verbose=False)
    assert set(saved.members_()) == {"ngram_linear", "lightgbm", "network"}
    assert saved.evaluate(tables / "test.csv")["accuracy"] > 0.6
