"""The network's probe: after its first epochs it trains on only when its validation outputs add to the ensemble of
the members fitted before it; otherwise training stops there and the portfolio leaves it out, saying so."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mmfuse import Predictor
from tests.conftest import make_table, write_tables
from tests.corpus import cli

OPTIONS = dict(label="y", preset="fast", members=["ngram_linear", "network"], max_epochs=8, threads=2,
               progress=False, verbose=False)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return write_tables(tmp_path_factory.mktemp("probe"), train=200, valid=80)


def test_a_network_that_adds_nothing_stops_at_its_probe_and_is_left_out(tables, tmp_path):
    """The text is the label's name here (the cheap member is right, and sure, on every validation row): the
    network cannot add, stops after the probe's 3 epochs of 8, and is not in the saved model."""
    frame = make_table(tmp_path, n=200, seed=0)[["y"]].assign(text=lambda f: [f"class{y}" for y in f["y"]])
    frame.to_csv(tmp_path / "train.csv", index=False)
    outcome = cli("fit", tmp_path / "train.csv", "--label", "y", "--preset", "fast", "--members",
                  "ngram_linear,network", "--max-epochs", "8", "--threads", "2", "--out", tmp_path / "model")
    assert outcome.code == 0, outcome
    assert "member network: probe +0.0000 valid accuracy" in outcome.err and ": skipped" in outcome.err
    board = {r["member"]: r for r in json.loads(cli("leaderboard", tmp_path / "model", "--json").out)}
    assert board["network"]["status"].startswith("skipped: probe +0.0000") and board["network"]["weight"] == 0
    p = Predictor.load(tmp_path / "model", verbose=False)
    assert p.metrics_["epochs"] == 3 and p.metrics_["stopped"].startswith("the probe")
    assert p.members_() == ["ngram_linear"]


def test_a_network_that_adds_trains_on_and_refits(tmp_path):
    """The label is whether two numbers share a sign, which no linear model sees and the network learns in a few
    epochs: at the probe it already adds, so it trains on (past the probe's epochs) and keeps a weight. Asked to refit,
    the network is built afresh and trains the epochs validation kept on the training and validation rows together;
    the model saved is that one."""
    for name, seed, n in (("train", 0, 200), ("valid", 1, 80)):
        rng = np.random.default_rng(seed)
        a, b = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
        frame = pd.DataFrame({"a": a, "b": b, "y": np.where(a * b > 0, "same", "other")})
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    p = Predictor(**OPTIONS, batch_size=32, refit=True).fit(tmp_path / "train.csv", valid=tmp_path / "valid.csv")
    board = p.leaderboard().set_index("member")
    assert board.loc["network", "status"] == "fitted" and board.loc["network", "probe"].endswith(": kept")
    assert float(board.loc["network", "probe"].split(":")[0]) > 0 and p.metrics_["epochs"] > 3
    assert p.portfolio_.weights.get("network", 0) > 0
    network = p.portfolio_.members["network"]
    assert board.loc["network", "refit"] == "yes" and board.loc["network", "rows"] == 280
    assert len(network.result.history) == p.metrics_["restored_epoch"] and network.model is p.model_
    split = p.prepare(tmp_path / "valid.csv")[1]
    again = Predictor.load(p.save(tmp_path / "model"), verbose=False)
    assert np.allclose(again.predict_outputs(split), p.predict_outputs(split), atol=1e-6)


def test_the_probe_can_be_turned_off(tables):
    p = Predictor(**OPTIONS, config={"portfolio": {"probe_epochs": 0}}).fit(tables / "train.csv",
                                                                             valid=tables / "valid.csv")
    assert "probe" not in p.leaderboard().columns and p.metrics_["epochs"] > 3
