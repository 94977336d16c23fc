"""Column importance: the drop in the primary metric when a column is shuffled between rows (or removed), for every
column, numbers and categories one by one, over the whole portfolio (``Predictor.importance``, ``evaluate
--importance``)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from mmfuse import Predictor
from tests.corpus import cli

WORDS = {0: ["calm", "grey", "slow", "quiet"], 1: ["bright", "loud", "quick", "sharp"]}


def graded_table(n: int, seed: int, regression: bool = False) -> pd.DataFrame:
    """A label that a strong number decides most, and a weak number and the tone of a text's words a little; a noise
    number and a noise category decide nothing."""
    rng = np.random.default_rng(seed)
    strong, weak, noise, tone = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n), rng.integers(0, 2, n)
    score = 2.0 * strong + 0.6 * weak + 0.8 * (2 * tone - 1) + rng.normal(scale=0.5, size=n)
    y = score if regression else (score > 0).astype(int)
    notes = [" ".join(rng.choice(WORDS[t], size=3)) for t in tone]
    return pd.DataFrame({"strong": strong, "weak": weak, "noise": noise, "colour": rng.choice(["red", "blue"], n),
                         "note": notes, "y": y})


@pytest.fixture(scope="module", params=["binary", "regression"])
def fitted(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"importance-{request.param}")
    regression = request.param == "regression"
    for name, seed, n in (("train", 0, 500), ("valid", 1, 200), ("test", 2, 300)):
        graded_table(n, seed, regression).to_csv(folder / f"{name}.csv", index=False)
    p = Predictor(label="y", task=request.param, preset="fast", members=["ngram_linear", "lightgbm"], threads=2,
                  progress=False, verbose=False, cache_dir=folder / "cache").fit(folder / "train.csv",
                                                                              valid=folder / "valid.csv")
    p.save(folder / "model")
    return p, folder


def test_columns_rank_strong_over_weak_over_noise(fitted):
    p, folder = fitted
    ranking = p.importance(folder / "test.csv", repeats=5)
    assert set(ranking.index) == {"strong", "weak", "noise", "colour", "note"}
    assert list(ranking.columns) == ["importance", "stddev", "n", "modality", "input"]
    assert (ranking["n"] == 5).all()
    assert ranking.loc["strong", "importance"] > ranking.loc["weak", "importance"] > ranking.loc["noise", "importance"]
    assert ranking.loc["weak", "importance"] > 0 and ranking.loc["note", "importance"] > 0
    for column in ("noise", "colour"):  # no signal: indistinguishable from 0
        assert ranking.loc[column, "importance"] - 2 * ranking.loc[column, "stddev"] <= 0
    assert ranking.loc["strong", "input"] == "tabular" and ranking.loc["note", "input"] == "note"
    assert ranking.loc["colour", "modality"] == "categorical"
    assert ranking.index[0] == "strong"  # most important first


def test_mask_removes_each_column_once_and_agrees_on_the_order(fitted):
    p, folder = fitted
    ranking = p.importance(folder / "test.csv", method="mask")
    assert (ranking["n"] == 1).all() and (ranking["stddev"] == 0).all()
    importance = ranking["importance"]
    assert importance["strong"] > importance["weak"] > abs(importance["noise"])


def test_the_same_seed_gives_the_same_figures_and_bad_settings_are_refused(fitted):
    p, folder = fitted
    first, again = (p.importance(folder / "test.csv", repeats=2, seed=3) for _ in range(2))
    pd.testing.assert_frame_equal(first, again)
    with pytest.raises(ValueError, match="method must be one of permute, mask"):
        p.importance(folder / "test.csv", method="drop")
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        p.importance(folder / "test.csv", repeats=0)


def test_importance_on_a_few_rows_warns_that_it_is_noise(fitted, caplog):
    p, folder = fitted
    with caplog.at_level(logging.WARNING, logger="mmfuse"):
        p.importance(pd.read_csv(folder / "test.csv").head(1), repeats=1)
    assert any("importance on 1 labelled row: fewer than 30" in r.getMessage() for r in caplog.records)


def test_evaluate_importance_prints_json_and_draws_the_bars(fitted, tmp_path):
    p, folder = fitted
    plot = tmp_path / "importance.png"
    result = cli("evaluate", str(folder / "model"), str(folder / "test.csv"), "--json", "--importance",
                 "--importance-repeats", "2", "--importance-plot", str(plot))
    assert result.code == 0, result.err
    report = json.loads(result.out)["importance"]
    assert report["method"] == "permute" and report["metric"] == p.task_.primary_metric
    assert [c["column"] for c in report["columns"]][0] == "strong"
    assert set(report["input_shapley"]) == {"tabular", "note"}
    assert report["input_shapley"]["tabular"] > report["input_shapley"]["note"]
    assert plot.stat().st_size > 1000
    table = cli("evaluate", str(folder / "model"), str(folder / "test.csv"), "--importance", "--importance-method",
                "mask")
    assert table.code == 0 and "importance of each column" in table.out and "when it is removed" in table.out


def test_predict_explain_adds_each_inputs_and_each_columns_contribution(fitted, tmp_path):
    p, folder = fitted
    frame = p.predict_frame(folder / "test.csv", explain=True)
    plain = p.predict_frame(folder / "test.csv")
    pd.testing.assert_frame_equal(frame[plain.columns], plain)  # explaining changes no prediction
    inputs, columns = ["note", "tabular"], ["strong", "weak", "noise", "colour"]
    assert {f"contribution_{n}" for n in inputs + columns} | {f"shapley_{n}" for n in inputs} <= set(frame.columns)
    regression = p.task_.name == "regression"
    assert frame["explains"].iloc[0] == ("predicted value" if regression else
                                         f"probability of {frame['prediction'].iloc[0]}")
    size = frame.filter(like="contribution_").abs().mean()
    assert size["contribution_strong"] > size["contribution_weak"] > size["contribution_noise"]
    assert size["contribution_colour"] < size["contribution_weak"]
    out = tmp_path / "explained.csv"
    assert cli("predict", str(folder / "model"), str(folder / "test.csv"), "--explain", "--out", str(out)).code == 0
    written = pd.read_csv(out)
    assert list(written.columns) == list(frame.columns)
    np.testing.assert_allclose(written["contribution_strong"], frame["contribution_strong"], rtol=1e-5, atol=1e-6)
