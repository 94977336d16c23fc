"""scikit-learn manners: keyword-only settings kept as given, get_params / set_params, clone, fit(X, y), score, and
the model-selection helpers (cross_val_score, GridSearchCV) on a DataFrame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_table
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from mmfuse import Predictor, Retriever
from mmfuse.errors import NotFittedError

SETTINGS = dict(preset="fast", max_epochs=2, threads=2, progress=False, verbose=False, ignore=["id"])


@pytest.fixture
def frame(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a DataFrame's image paths resolve against the working directory
    return make_table(tmp_path, n=150, seed=3)


def test_positional_settings_are_refused_naming_the_keyword():
    with pytest.raises(TypeError, match=r"^Predictor takes keyword arguments only: Predictor\(label='y', "
                                        r"task='binary', \.\.\.\)$"):
        Predictor("y", "binary")
    with pytest.raises(TypeError, match=r"Retriever\(query='caption', \.\.\.\)"):
        Retriever("caption")


def test_params_are_kept_as_given_and_settable():
    encoders = {"text": "gru"}
    predictor = Predictor(label="y", encoders=encoders, lr=0.01)
    params = predictor.get_params()
    assert params["label"] == "y" and params["encoders"] is encoders and params["lr"] == 0.01
    assert params["preset"] == "default" and len(params) == 37
    assert predictor.set_params(lr=0.1, max_epochs=3) is predictor and predictor.lr == 0.1
    with pytest.raises(ValueError, match="Invalid parameter 'learning_rate'"):
        predictor.set_params(learning_rate=0.1)
    assert repr(predictor) == "Predictor(encoders={'text': 'gru'}, label='y', lr=0.1, max_epochs=3)"


def test_clone_gives_an_unfitted_copy_with_the_same_settings(frame):
    fitted = Predictor(label="y", **SETTINGS).fit(frame)
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params() and copy is not fitted
    with pytest.raises(NotFittedError):
        copy.predict(frame)


def test_fit_x_y_and_score(frame):
    X, y = frame.drop(columns="y"), frame["y"]
    predictor = Predictor(label="y", **SETTINGS).fit(X, y)
    assert predictor.score(X, y) == predictor.evaluate(frame)["accuracy"]
    assert predictor.score(frame) == predictor.score(X, y.to_numpy())
    with pytest.raises(TypeError, match="fit's second argument is y, the labels; pass a validation table as valid="):
        Predictor(label="y", **SETTINGS).fit(frame, frame)


def test_regression_score_is_minus_rmse(frame):
    frame = frame.assign(price=10 * frame["y"] + frame["x"]).drop(columns="y")
    predictor = Predictor(label="price", **SETTINGS).fit(frame)
    assert predictor.score(frame) == pytest.approx(-predictor.evaluate(frame)["rmse"])


def test_cross_val_score_and_grid_search_on_a_dataframe(frame):
    scores = cross_val_score(Predictor(label="y", **SETTINGS), frame, cv=KFold(3))
    assert scores.shape == (3,) and ((scores > 0.6) & (scores <= 1)).all()
    search = GridSearchCV(Predictor(label="y", **SETTINGS), {"max_epochs": [1, 3]}, cv=2).fit(frame)
    assert search.best_params_["max_epochs"] in (1, 3)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    proba = search.best_estimator_.predict_proba(frame.iloc[::3])
    assert proba.index.equals(frame.index[::3])
    assert isinstance(search.predict(frame), pd.Series)
