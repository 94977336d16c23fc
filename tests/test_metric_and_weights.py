"""The user's metric (``eval_metric``) drives every choice made on validation rows; row weights (the flat views'
``weight``) reach the linear members' loss and transforms, greedy selection and the temperatures."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch

from mmfuse import Predictor
from mmfuse.errors import ConfigError
from mmfuse.portfolio.selection import combine, greedy_selection
from mmfuse.portfolio.trees import LightGBMLearner
from mmfuse.tasks import create_task
from tests.conftest import make_table
from tests.corpus import cli

FAST = dict(label="y", preset="fast", max_epochs=2, threads=2, progress=False, verbose=False, ignore=["id", "image"])


def two_members(n_rare: int = 10, n: int = 100) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """A binary target with ``n_rare`` positives, and two members' probabilities (N, 2): ``majority`` always says
    0 (accuracy 0.90, macro-F1 0.47), ``finder`` finds every positive at the cost of 15 false ones (accuracy 0.85,
    macro-F1 ~0.75)."""
    target = torch.tensor([1] * n_rare + [0] * (n - n_rare))
    majority = np.tile([0.7, 0.3], (n, 1))
    p = np.where(np.arange(n) < n_rare + 15, 0.8, 0.2)
    return target, {"majority": majority.astype(np.float32), "finder": np.stack([1 - p, p], 1).astype(np.float32)}


def binary(metric: str | None = None):
    task = create_task("binary", "y", metric=metric)
    task.classes = [0, 1]
    return task


def test_the_metric_picks_the_ensemble():
    target, outputs = two_members()
    by = {metric: greedy_selection(outputs, target, binary(metric)) for metric in ("accuracy", "macro_f1")}
    assert by["accuracy"]["majority"] > by["accuracy"].get("finder", 0.0)
    assert by["macro_f1"]["finder"] > by["macro_f1"].get("majority", 0.0)
    for metric in by:  # each ensemble is the better one by the metric that picked it
        other = next(m for m in by if m != metric)
        scores = {m: binary().metrics(target, combine(outputs, by[m]))[metric] for m in by}
        assert scores[metric] > scores[other]


def test_a_metric_that_does_not_apply_to_the_task_is_one_line():
    with pytest.raises(ConfigError, match="eval_metric 'rmse' does not apply to a binary task; choose from: accuracy"):
        binary("rmse")
    assert binary("log_loss").maximize is False and binary("roc_auc").maximize is True


def test_lightgbm_stops_on_the_users_metric(tmp_path):
    """Scored by the user's metric through LightGBM's feval: the log loss as ``eval_metric`` stops at the round its
    own multiclass loss stops at (the same numbers), ROC-AUC where ROC-AUC stops improving."""
    frame = make_table(tmp_path, n=300, n_classes=3, seed=0)
    rng = np.random.default_rng(0)
    x = np.c_[frame["x"], rng.normal(size=(300, 3))]
    task = create_task("multiclass", "y")
    task.fit(frame["y"])
    target = task.encode(frame["y"])
    data = _dense_flat(x)
    rounds = {}
    for metric in (None, "log_loss", "roc_auc"):
        t = create_task("multiclass", "y", metric=metric)
        t.classes = task.classes
        member = LightGBMLearner(seed=0, threads=2, patience=10)
        member.learn(data.take(torch.arange(200)), target[:200], t, data.take(torch.arange(200, 300)), target[200:])
        rounds[metric] = member.fitted["rounds"][0]
    assert rounds[None] == rounds["log_loss"]
    assert rounds["roc_auc"] != rounds["log_loss"]


def _dense_flat(x: np.ndarray):
    from mmfuse.core.processor import FlatView
    from mmfuse.portfolio.flat import FlatInputs

    view = FlatView(dense=torch.from_numpy(x).float())
    return FlatInputs({"tabular": view}, {"tabular": torch.ones(len(x), dtype=torch.bool)})


def test_eval_metric_reaches_the_leaderboard_the_network_and_the_saved_model(tmp_path):
    for name, seed, n in (("train", 0, 160), ("valid", 1, 60)):
        make_table(tmp_path, n=n, seed=seed).to_csv(tmp_path / f"{name}.csv", index=False)
    p = Predictor(eval_metric="macro_f1", members=["ngram_linear", "lightgbm", "network"], **FAST)
    p.fit(tmp_path / "train.csv", valid=tmp_path / "valid.csv")
    board = p.leaderboard(tmp_path / "valid.csv")
    assert "valid_macro_f1" in board.columns and "valid_accuracy" not in board.columns
    assert all("val_macro_f1" in epoch for epoch in p.history_)
    p.save(tmp_path / "model")
    loaded = Predictor.load(tmp_path / "model", verbose=False)
    assert loaded.task_.primary_metric == "macro_f1" and loaded.eval_metric == "macro_f1"
    assert json.loads((tmp_path / "model" / "config.json").read_text())["task"]["metric"] == "macro_f1"


def test_the_cli_takes_eval_metric_and_names_a_wrong_one(tmp_path):
    make_table(tmp_path, n=120, seed=0).to_csv(tmp_path / "train.csv", index=False)
    wrong = cli("fit", tmp_path / "train.csv", "--label", "y", "--eval-metric", "r2", "--out", tmp_path / "m")
    assert wrong.code == 2 and "eval_metric 'r2' does not apply to a binary task" in wrong.err
    done = cli("fit", tmp_path / "train.csv", "--label", "y", "--eval-metric", "balanced_accuracy", "--preset", "fast",
               "--members", "ngram_linear,lightgbm", "--ignore", "id", "--ignore", "image", "--threads", "2",
               "--out", tmp_path / "m")
    assert done.code == 0, done.err
    assert "balanced_accuracy" in done.out
    assert "valid_balanced_accuracy" in (tmp_path / "m" / "metrics.json").read_text()


@pytest.mark.parametrize("task_name", ["binary", "multiclass", "multilabel", "regression"])
def test_a_doubled_weight_is_a_duplicated_row_for_the_linear_members(task_name):
    """The n-gram linear member fitted with row 0..9 weighted 2 ends where it ends with those rows given twice."""
    from mmfuse.portfolio.linear import NgramLinear

    rng = np.random.default_rng(0)
    n, d = 120, 6
    x = torch.from_numpy(rng.normal(size=(n, d))).float()
    signal = x[:, 0] + 0.5 * x[:, 1] + torch.from_numpy(rng.normal(0, 0.5, n)).float()
    task = create_task(task_name, "y")
    target = {"binary": (signal > 0).long(), "multiclass": torch.bucketize(signal, torch.tensor([-0.5, 0.5])),
              "multilabel": torch.stack([(signal > 0), (x[:, 2] > 0)], 1).float(), "regression": signal}[task_name]
    task.classes = {"binary": [0, 1], "multiclass": [0, 1, 2], "multilabel": ["a", "b"]}.get(task_name)
    flat = _dense_flat(x.numpy())
    weight = torch.ones(n)
    weight[:10] = 2.0
    weighted = NgramLinear(seed=0, C=0.3, grid=(0.3,), max_iter=500).learn(
        with_weight(flat, weight), target, task)
    twice = torch.cat([torch.arange(n), torch.arange(10)])
    duplicated = NgramLinear(seed=0, C=0.3, grid=(0.3,), max_iter=500).learn(flat.take(twice), target[twice], task)
    unweighted = NgramLinear(seed=0, C=0.3, grid=(0.3,), max_iter=500).learn(flat, target, task)
    gap = np.abs(weighted.logits(flat) - duplicated.logits(flat)).max()
    assert gap < 1e-3 * np.abs(duplicated.logits(flat)).max()
    assert np.abs(unweighted.logits(flat) - duplicated.logits(flat)).max() > 20 * gap


def with_weight(flat, weight):
    from dataclasses import replace

    return replace(flat, weight=weight)


def test_weights_reach_the_selection_and_the_temperature():
    """Weighting the rare positives 9x turns greedy selection to the member that finds them, and the temperature
    fitted on weighted rows minimises the weighted log loss (it differs from the unweighted one)."""
    from mmfuse.portfolio.calibration import fit_temperatures

    target, outputs = two_members()
    weight = np.where(target.numpy() == 1, 9.0, 1.0)
    assert greedy_selection(outputs, target, binary(), weight=weight).get("finder", 0.0) > 0.5
    plain = fit_temperatures(outputs["finder"], target, per_label=False)
    weighted = fit_temperatures(outputs["finder"], target, per_label=False, weight=weight)
    assert abs(plain[0] - weighted[0]) > 0.05


def imbalanced(folder, n: int, seed: int, keep: float = 0.15):
    """``make_table``'s binary table with most rows of class 1 left out (rows kept: all of class 0, ``keep`` of 1)."""
    frame = make_table(folder, n=n, seed=seed)
    rng = np.random.default_rng(seed)
    return frame[(frame["y"] == 0) | (rng.random(len(frame)) < keep)].reset_index(drop=True)


@pytest.fixture(scope="module")
def skewed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("skewed")
    for name, seed, n in (("train", 0, 400), ("valid", 1, 160), ("test", 2, 200)):
        imbalanced(folder, n, seed).to_csv(folder / f"{name}.csv", index=False)
    return folder


def positives(p, folder) -> int:
    return int((p.predict(folder / "test.csv") == 1).sum())


def test_class_and_row_weights_turn_the_model_to_the_rare_class(skewed, caplog):
    settings = dict(FAST, members=["ngram_linear", "lightgbm", "network"], refit=False)
    plain = Predictor(**settings).fit(skewed / "train.csv", valid=skewed / "valid.csv")
    balanced = Predictor(class_weight="balanced", **settings).fit(skewed / "train.csv", valid=skewed / "valid.csv")
    train = pd.read_csv(skewed / "train.csv")
    rows = Predictor(**settings).fit(train, valid=skewed / "valid.csv", sample_weight=np.where(train["y"] == 1, 5.0, 1.0))
    assert positives(balanced, skewed) > positives(plain, skewed)
    assert positives(rows, skewed) > positives(plain, skewed)
    assert "sample_weight" not in " ".join(c.name for c in rows.columns_)


def test_a_weight_column_from_the_cli_and_its_bad_values(skewed):
    train = pd.read_csv(skewed / "train.csv").assign(w=lambda f: np.where(f["y"] == 1, 4.0, 1.0))
    train.to_csv(skewed / "weighted.csv", index=False)
    done = cli("fit", skewed / "weighted.csv", "--label", "y", "--sample-weight", "w", "--preset", "fast",
               "--members", "ngram_linear", "--ignore", "id", "--ignore", "image", "--threads", "2",
               "--out", skewed / "m")
    assert done.code == 0, done.err
    assert "w" not in [c["name"] for c in json.loads((skewed / "m" / "config.json").read_text())["columns"]]
    train.loc[7, "w"] = -1.0
    train.to_csv(skewed / "weighted.csv", index=False)
    bad = cli("fit", skewed / "weighted.csv", "--label", "y", "--sample-weight", "w", "--preset", "fast",
              "--members", "ngram_linear", "--ignore", "id", "--out", skewed / "m2")
    assert bad.code == 2 and "train row 7: sample weight -1.0 is not a finite number at or above 0" in bad.error_line


def test_a_class_too_small_for_the_folds_is_warned_of(tmp_path, caplog):
    frame = make_table(tmp_path, n=120, n_classes=3, seed=0)
    frame = pd.concat([frame[frame["y"] != 2], frame[frame["y"] == 2].head(3)])
    logger = logging.getLogger("mmfuse")  # a CLI run before may have stopped it propagating to caplog's root
    logger.addHandler(caplog.handler)
    try:
        Predictor(members=["ngram_linear"], **{**FAST, "verbose": True}).fit(frame)
    finally:
        logger.removeHandler(caplog.handler)
    warned = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("class '2' has") and "fewer than the 5 folds" in m for m in warned), warned


def test_each_task_lists_the_metrics_it_optimises():
    from mmfuse.tasks import metric_names

    assert metric_names("binary")[0] == "accuracy" and "balanced_accuracy" in metric_names("multiclass")
    assert metric_names("multilabel")[0] == "micro_f1" and metric_names("regression") == ("rmse", "mae", "r2")
    for name in ("binary", "multiclass", "multilabel", "regression"):
        for metric in metric_names(name):
            assert create_task(name, "y", metric=metric).primary_metric == metric
