"""The estimator base: not-fitted is its own error, the library logs instead of printing, progress goes to a
callback, ``describe`` answers what ``mmfuse info`` shows."""

from __future__ import annotations

import logging
import re

import pytest

from mmfuse import NotFittedError, Predictor, Retriever

FAST = {"preset": "fast", "max_epochs": 1, "threads": 2, "ignore": ["id"]}


@pytest.mark.parametrize("make", [lambda: Predictor(label="y"), lambda: Retriever(query="text", target="image")])
def test_unfitted_estimators_say_so(make, tmp_path):
    estimator = make()
    with pytest.raises(NotFittedError, match="not fitted yet: call fit"):
        estimator.save(tmp_path / "m")
    with pytest.raises(NotFittedError):
        estimator.describe()


def test_the_library_logs_and_never_prints(table_dir, capsys, caplog):
    with caplog.at_level(logging.INFO, logger="mmfuse"):
        Predictor(label="y", progress=False, **FAST).fit(table_dir / "train.csv")
    assert capsys.readouterr() == ("", "")
    messages = [r.getMessage() for r in caplog.records if r.name == "mmfuse"]
    assert any(m.startswith("columns:") and "image" in m for m in messages)
    assert any("trainable parameters" in m for m in messages)

    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="mmfuse"):
        Predictor(label="y", progress=False, verbose=False, **FAST).fit(table_dir / "train.csv")
    assert caplog.records and all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "mmfuse")


def test_progress_goes_to_a_callback(table_dir):
    seen = []
    Predictor(label="y", progress=lambda what, done, total: seen.append((what, done, total)), verbose=False,
              **FAST).fit(table_dir / "train.csv")
    assert ("reading images of 'image'", 128, 128) in seen  # the 160 training rows less the 32 held out


def test_describe(table_dir):
    about = Predictor(label="y", progress=False, verbose=False, **FAST).fit(table_dir / "train.csv").describe()
    assert about["task"] == "binary" and about["label"] == "y" and about["classes"] == [0, 1]
    encoders = {i["column"]: i["encoder"] for i in about["inputs"]}
    assert encoders == {"id": "-", "text": "bow", "image": "conv", "x": "mlp", "colour": "mlp"}
    assert about["metrics"]["epochs"] == 1


@pytest.mark.parametrize("make, message", [
    (lambda: Predictor(label="y", on_bad_row="drop"), "on_bad_row must be error, skip or mask"),
    (lambda: Retriever(query="text", target="image", on_bad_row="drop"), "on_bad_row must be error, skip or mask"),
    (lambda: Retriever(query="text", target="text", preset="fast"), "two different columns"),
])
def test_both_estimators_check_their_settings_at_fit(make, message, table_dir):
    from mmfuse import ConfigError

    estimator = make()  # __init__ only stores, as in scikit-learn
    with pytest.raises(ConfigError, match=message):
        estimator.fit(table_dir / "train.csv")


def test_fit_records_where_the_time_went(table_dir, tmp_path):
    import pandas as pd

    predictor = Predictor(label="y", progress=False, verbose=False, **{**FAST, "max_epochs": 2})
    stages = predictor.fit(table_dir / "train.csv").metrics_["stages"]
    parts = ("read", "columns", "fit preprocessing", "preprocess", "set-up", "training")
    assert all(stages[p] >= 0 for p in parts) and sum(stages[p] for p in parts) <= stages["total"]
    assert 0 < stages["epochs"] + stages["validation"] <= stages["training"]
    log = pd.read_csv(predictor.save(tmp_path / "m") / "training_log.csv")
    assert len(log) == 2 and (log["train_seconds"] > 0).all() and (log["valid_seconds"] > 0).all()
    assert log["seconds"].ge(log["train_seconds"] + log["valid_seconds"] - 1e-6).all()


@pytest.mark.parametrize("call, message", [
    (lambda: Predictor(label="y").fit("t.csv", time_limit=60),
     "time_limit is a setting of Predictor, not an argument of fit(): Predictor(..., time_limit=60).fit(...), or "
     "set_params(time_limit=60) before fit"),
    (lambda: Retriever(query="a", target="b").fit("t.csv", max_epochs=3),
     "max_epochs is a setting of Retriever, not an argument of fit()"),
    (lambda: Predictor(label="y").fit("t.csv", presets="best_quality"),
     "Predictor takes preset= in its constructor (AutoGluon's presets): Predictor(..., preset='best_quality')"),
    (lambda: Predictor(label="y", problem_type="binary"),
     "Predictor takes task= (AutoGluon's problem_type): task='binary'"),
    (lambda: Predictor(label="y").fit("t.csv", tuning_data="v.csv"), "fit() takes valid= (AutoGluon's tuning_data)"),
    (lambda: Predictor(label="y").fit("t.csv", eval_metric="macro_f1"),
     "eval_metric is a setting of Predictor, not an argument of fit(): Predictor(..., eval_metric='macro_f1')"),
    (lambda: Retriever(query="q", target="t").fit("t.csv", sample_weight=[1.0]), "Retriever has no sample_weight: row"),
    (lambda: Predictor(label="y").fit("t.csv", vaild="v.csv"),
     "fit() got an unexpected keyword argument 'vaild' (did you mean valid?)"),
])
def test_an_argument_in_the_wrong_place_says_where_it_belongs(call, message):
    """Before anything is read: AutoGluon's first line, other tools' names, a typo."""
    with pytest.raises(TypeError) as err:
        call()
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.parametrize("members", [None, ["lightgbm"]])
def test_the_task_is_logged_with_why_whatever_trains(table_dir, caplog, members):
    with caplog.at_level(logging.INFO, logger="mmfuse"):
        Predictor(label="y", progress=False, members=members, **FAST).fit(table_dir / "train.csv")
    assert "task: binary, inferred from label 'y' (2 distinct values; --task sets another)" in caplog.text
    with caplog.at_level(logging.INFO, logger="mmfuse"):
        Predictor(label="y", task="multiclass", progress=False, members=members, **FAST).fit(table_dir / "train.csv")
    assert "task: multiclass (as set)" in caplog.text


def test_training_says_why_it_stopped(table_dir):
    limit = Predictor(label="y", progress=False, verbose=False, **{**FAST, "max_epochs": 2})
    limit.fit(table_dir / "train.csv")
    assert limit.metrics_["stopped"] == "the epoch limit (max_epochs 2)"
    patient = Predictor(label="y", progress=False, verbose=False, config={"train": {"patience": 1}},
                        **{**FAST, "max_epochs": 40}).fit(table_dir / "train.csv")
    assert patient.metrics_["stopped"] == ("early stopping: validation accuracy did not improve for 1 epoch in a "
                                          "row (patience 1)")
    assert len(patient.history_) < 40


@pytest.mark.parametrize("setting, says", [
    ({"time_limit": float("inf")}, "time_limit must be a finite number of seconds above 0, not inf"),
    ({"time_limit": float("nan")}, "time_limit must be a finite number of seconds above 0, not nan"),
    ({"lr": float("inf")}, "train.lr: Input should be a finite number"),
    ({"seed": -1}, "train.seed: Input should be greater than or equal to 0"),
    ({"config": {"train": {"weight_decay": float("nan")}}}, "train.weight_decay: Input should be a finite number"),
])
def test_numeric_settings_are_finite_and_in_range(table_dir, setting, says):
    from mmfuse import ConfigError

    with pytest.raises(ConfigError, match=re.escape(says)):
        Predictor(label="y", **setting).fit(table_dir / "train.csv")
