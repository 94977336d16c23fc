"""The refit on every labelled row: after the ensemble is chosen on validation, the members it reads learn again from
the training and validation rows with the settings validation picked; the reported validation scores stay the first
fits'; off with ``--no-refit``, and with a validation table given unless asked; kept out when the time limit has no
room; resumed member by member; saved, loaded and predicted like any portfolio."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmfuse import Predictor
from mmfuse.portfolio.fit import PortfolioFit
from mmfuse.portfolio.learner import Learner
from mmfuse.portfolio.linear import LinearLearner, NgramLinear
from mmfuse.portfolio.member import FitData
from tests.conftest import write_tables
from tests.corpus import cli

MEMBERS = ["ngram_linear", "lightgbm", "lightgbm_xt"]
OPTIONS = dict(label="y", preset="fast", members=MEMBERS, threads=2, progress=False, verbose=False,
               ignore=["id", "image"])


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return write_tables(tmp_path_factory.mktemp("refit"), train=200, valid=60, test=100)


@pytest.fixture(scope="module")
def pair(tables):
    """The same fit (held-out validation rows) with and without the refit."""
    return (Predictor(**OPTIONS).fit(tables / "train.csv"),
            Predictor(**OPTIONS, refit=False).fit(tables / "train.csv"))


def test_the_chosen_members_learn_again_from_every_row_with_the_settings_validation_picked(pair, tables, tmp_path):
    refitted, first = pair
    board = refitted.leaderboard().set_index("member")
    chosen = set(refitted.portfolio_.needed())
    assert chosen and all(board.loc[m, "refit"] == "yes" and board.loc[m, "rows"] == 200 for m in chosen)
    for m in set(MEMBERS) - chosen:  # weight 0: kept as first fitted, or dropped where it read a refitted member
        reads = set(first.portfolio_.members[m].fitted_reads())
        assert board.loc[m, "rows"] == 160 and (board.loc[m, "status"].startswith("dropped after the refit") if
                                                reads & chosen else board.loc[m, "refit"] == "no: weight 0")
    assert "refit" not in first.leaderboard().columns and (first.leaderboard()["rows"].dropna() == 160).all()
    # validation chose the same ensemble; its reported score is the first fits' (the refit learned those rows)
    assert refitted.portfolio_.weights == first.portfolio_.weights
    assert refitted.metrics_["valid"] == first.metrics_["valid"]
    new, old = refitted.portfolio_.members, first.portfolio_.members
    assert new["ngram_linear"].fitted["C"] == old["ngram_linear"].fitted["C"]
    assert {n: p.fitted["C"] for n, p in new["ngram_linear"]._parts.items()} == \
        {n: p.fitted["C"] for n, p in old["ngram_linear"]._parts.items()}
    for trees in chosen & {"lightgbm", "lightgbm_xt"}:
        assert new[trees].rounds == old[trees].fitted["rounds"]  # (LightGBM may end sooner: no split left)
    assert not np.array_equal(new["ngram_linear"].arrays["coef"], old["ngram_linear"].arrays["coef"])
    # saved, loaded, predicted and exported as fitted
    split = refitted.prepare(tables / "test.csv")[1]
    path = refitted.save(tmp_path / "model")
    again = Predictor.load(path, verbose=False)
    assert np.array_equal(again.predict_outputs(split), refitted.predict_outputs(split))
    assert again.leaderboard()["refit"].tolist()[:-1] == board["refit"].tolist()[:-1]
    assert cli("export", path).code == 0
    graph = Predictor.load(path, verbose=False, backend="onnx")
    assert np.abs(graph.predict_outputs(split) - refitted.predict_outputs(split)).max() <= 1e-4
    assert refitted.evaluate(tables / "test.csv")["accuracy"] >= first.evaluate(tables / "test.csv")["accuracy"] - 0.05


def test_a_validation_table_is_learned_from_only_when_asked(tables, tmp_path):
    rows = {}
    for name, extra in (("given", ()), ("asked", ("--refit",)), ("off", ("--no-refit",))):
        valid = () if name == "off" else ("--valid", tables / "valid.csv")
        outcome = cli("fit", tables / "train.csv", "--label", "y", *valid, "--preset", "fast", "--members",
                      ",".join(MEMBERS), "--ignore", "id", "--ignore", "image", "--threads", "2", "--quiet",
                      *extra, "--out", tmp_path / name)
        assert outcome.code == 0, outcome
        board = json.loads(cli("leaderboard", tmp_path / name, "--json").out)
        rows[name] = {r["member"]: (r["rows"], r.get("refit")) for r in board if r["member"] != "ensemble"}
    assert {r for r, _ in rows["given"].values()} == {200} and all(f is None for _, f in rows["given"].values())
    assert {r for r, f in rows["asked"].values() if f == "yes"} == {260}
    assert {r for r, _ in rows["off"].values()} == {160} and all(f is None for _, f in rows["off"].values())


def test_a_refit_the_time_limit_has_no_room_for_keeps_the_first_fits(tables, monkeypatch, caplog):
    monkeypatch.setattr(PortfolioFit, "refit_estimate", lambda self, names, data: 1e6)
    p = Predictor(**{**OPTIONS, "verbose": True}, time_limit=600).fit(tables / "train.csv")
    board = p.leaderboard().set_index("member")
    assert (board["rows"].dropna() == 160).all()
    assert all(board.loc[m, "refit"].startswith("no: estimated 1000000 s") for m in p.portfolio_.needed())
    assert "kept as fitted on the training rows" in caplog.text


def test_a_resumed_fit_loads_each_refitted_member(tables, tmp_path, monkeypatch):
    first = Predictor(**OPTIONS).fit(tables / "train.csv", checkpoint_dir=tmp_path / "ck")
    assert (tmp_path / "ck" / "members" / "ngram_linear.refit").is_dir()

    def again(*args, **kwargs):
        raise AssertionError("a saved member was fitted again")

    for cls in (Learner, LinearLearner, NgramLinear):
        monkeypatch.setattr(cls, "refit", again)
    monkeypatch.setattr(Learner, "fit", again)
    resumed = Predictor(**OPTIONS).fit(tables / "train.csv", checkpoint_dir=tmp_path / "ck", resume=True)
    (meta, arrays), (meta_again, arrays_again) = first.portfolio_.state(), resumed.portfolio_.state()
    assert meta["members"] == meta_again["members"] and meta["weights"] == meta_again["weights"]
    assert arrays.keys() == arrays_again.keys() and all(np.array_equal(arrays[k], arrays_again[k]) for k in arrays)


def test_trees_refit_for_the_rounds_early_stopping_kept(tables):
    alone = {**OPTIONS, "members": ["lightgbm"]}
    refitted, first = (Predictor(**alone, refit=refit).fit(tables / "train.csv") for refit in (True, False))
    new, old = refitted.portfolio_.members["lightgbm"], first.portfolio_.members["lightgbm"]
    assert new.rounds == old.fitted["rounds"] and new.fitted["models"] != old.fitted["models"]
    assert refitted.leaderboard().set_index("member").loc["lightgbm", "rows"] == 200


def test_a_warm_started_linear_refit_ends_where_one_from_zero_does(pair, tables):
    """A linear member's refit starts from its first fit's solution (``LinearLearner.warm``): the same objective, so
    the same model as a refit from zero, to the solver's tolerance."""
    _, first = pair
    sets = [first.pipeline_.dataset(split, first.targets(frame, split))
            for frame, split in (first.prepare(tables / f"{name}.csv", labelled=True) for name in ("train", "valid"))]
    data = FitData(*sets, first.pipeline_.dataset, first.pipeline_.processors)
    test = next(data.rows(first.pipeline_.dataset(first.prepare(tables / "test.csv")[1]), batch_rows=1000))
    member = first.portfolio_.members["ngram_linear"]
    warm = member._warm_copy()
    assert warm.warm is not None and len(warm.warm) == member.arrays["coef"].size + member.arrays["intercept"].size
    logits = [m.learn(data.every, data.every_target, first.task_).logits(test)
              for m in (warm, type(member)(**member.refit_settings()))]
    assert np.abs(logits[0] - logits[1]).max() < 0.02 * np.abs(logits[1]).max()
    assert not np.allclose(logits[0], member.logits(test))  # it learned from the validation rows too
