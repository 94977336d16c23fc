import numpy as np
import pandas as pd
import pytest
import torch

from mmfuse.errors import DataError
from mmfuse.tasks import create_task, explain_task, infer_task, task_from_state
from mmfuse.tasks.classification import parse_label_list


@pytest.mark.parametrize("labels, expected", [
    (pd.Series(["cat", "dog", "cat"]), "binary"),
    (pd.Series([0, 1, 2, 1]), "multiclass"),
    (pd.Series(["a", "b", "c"]), "multiclass"),
    (pd.Series(np.linspace(0, 1, 50)), "regression"),
    (pd.Series(np.arange(100)), "regression"),
    (pd.Series(['["a", "b"]', '["b"]', "[]"]), "multilabel"),
    (pd.Series([["a"], ["a", "b"]]), "multilabel"),
])
def test_infer_task(labels, expected):
    assert infer_task(labels) == expected


@pytest.mark.parametrize("labels, task, why", [
    (pd.Series(np.arange(60) % 60), "regression", "60 distinct integers, more than 20; --task multiclass reads them"),
    (pd.Series(np.arange(60) % 7), "multiclass", "7 distinct integers, at most 20; --task regression reads them"),
    (pd.Series(np.linspace(0, 1, 50)), "regression", "50 distinct numbers, not all integers"),
    (pd.Series(["a", "b", "c"]), "multiclass", "3 distinct values"),
])
def test_the_inferred_task_says_why_and_how_to_pick_another(labels, task, why):
    assert explain_task(labels)[0] == task and explain_task(labels)[1].startswith(why)


def test_single_valued_label_is_an_error():
    with pytest.raises(DataError, match="only one distinct value"):
        infer_task(pd.Series(["x", "x"], name="y"))


def test_label_list_parsing():
    assert parse_label_list('["a", "b"]', None) == ["a", "b"]
    assert parse_label_list("a| b |", "|") == ["a", "b"]
    assert parse_label_list(["x"], None) == ["x"]


def test_multiclass_metrics_and_unseen_label():
    task = create_task("multiclass", "y").fit(pd.Series(["a", "b", "c"]))
    target = task.encode(pd.Series(["a", "b", "c", "a"]))
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.3, 0.4, 0.3], [0.6, 0.2, 0.2]])
    m = task.metrics(target, proba)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.8, 0.3, 0.6])), rel=1e-5)
    assert 0 < m["roc_auc"] <= 1
    with pytest.raises(DataError, match="'z'.*not seen in training"):
        task.encode(pd.Series(["z"]))


def test_binary_probabilities_and_state_roundtrip():
    task = create_task("binary", "y").fit(pd.Series([1, 0, 1]))
    out = task.outputs(torch.tensor([[0.0], [10.0]]))
    assert out.shape == (2, 2) and np.allclose(out.sum(1), 1) and out[1, 1] > 0.99
    again = task_from_state(task.state_dict())
    assert again.classes == [0, 1] and again.prediction_frame(out)["prediction"].tolist() == [0, 1]


def test_regression_scaling_and_metrics():
    task = create_task("regression", "y").fit(pd.Series([10.0, 20.0, 30.0]))
    target = task.encode(pd.Series([10.0, 30.0]))
    assert target.tolist() == pytest.approx([-10 / np.std([10, 20, 30]), 10 / np.std([10, 20, 30])])
    m = task.metrics(target, np.array([[10.0], [30.0]]))
    assert m["rmse"] == pytest.approx(0) and m["r2"] == pytest.approx(1)
    with pytest.raises(DataError, match="not a number"):
        task.encode(pd.Series(["ten"]))


def test_multilabel_threshold_frame():
    task = create_task("multilabel", "tags", label_sep="|").fit(pd.Series(["a|b", "b", "c"]))
    frame = task.prediction_frame(np.array([[0.9, 0.6, 0.1]]))
    assert frame.loc[0, "prediction"] == "a|b"
    assert (frame.loc[0, "a"], frame.loc[0, "c"], frame.loc[0, "proba_c"]) == (1, 0, 0.1)
