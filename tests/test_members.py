"""Conformance over the registries: every registered portfolio member on every labelled task (fit, outputs, save ->
load -> the same outputs, a tampered state refused, its graph form equal to its logits or a refusal that names it, a
time budget of about zero returning quickly), and every task through fit / evaluate / predict. One fit per task,
shared by the tests."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import torch

from mmfuse import Predictor
from mmfuse.data.dataset import make_loader
from mmfuse.errors import BundleError, ConfigError
from mmfuse.portfolio import FitData, NetworkMember, NetworkPlan, TimeBudget
from mmfuse.portfolio.member import rows_of
from mmfuse.registry import MEMBERS, TASKS
from tests.forge import edit_json
from tests.test_portfolio import task_table
from tests.test_pretrained import save_tiny_hf_model

LABELLED = TASKS.names(labelled=True)
SETTINGS = dict(label="y", preset="fast", max_epochs=2, threads=2, progress=False, verbose=False,
                ignore=["id", "image"])


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return save_tiny_hf_model(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module", params=LABELLED)
def fitted(request, tmp_path_factory, bert):
    """Every registered member fitted on a small table of one task (text read by a tiny BERT: embeddings exist)."""
    task, folder = request.param, tmp_path_factory.mktemp(request.param)
    for name, seed, n in (("train", 0, 80), ("valid", 1, 40), ("test", 2, 30)):
        task_table(folder, task, n, seed).to_csv(folder / f"{name}.csv", index=False)
    p = Predictor(task=task, members=MEMBERS.names(), encoders={"text": f"text_hf:{bert}"}, cache_dir=folder / "cache",
                  label_sep="|" if task == "multilabel" else None, **SETTINGS)
    p.fit(folder / "train.csv", valid=folder / "valid.csv")
    return p, p.save(folder / "model"), folder


def test_every_task_fits_evaluates_and_predicts_with_every_member(fitted):
    p, _, folder = fitted
    board = p.leaderboard(folder / "test.csv")
    assert set(board["member"]) == {*MEMBERS.names(), "ensemble"} and (board["status"] == "fitted").all()
    split = p.prepare(folder / "test.csv")[1]
    width = 2 if p.task_.output_kind == "logit" else p.task_.out_dim  # binary: both classes' probabilities
    for member in MEMBERS.names():
        outputs = p.predict_outputs(split, member=member)
        assert outputs.shape == (30, width) and np.isfinite(outputs).all(), member
    assert p.task_.primary_metric in p.evaluate(folder / "test.csv")
    assert len(p.predict(folder / "test.csv")) == 30


def test_each_member_saves_and_loads_to_the_same_outputs(fitted):
    p, path, folder = fitted
    loaded = Predictor.load(path, verbose=False)
    split = p.prepare(folder / "test.csv")[1]
    for member in MEMBERS.names():
        assert np.allclose(loaded.predict_outputs(split, member=member), p.predict_outputs(split, member=member),
                           atol=1e-6), member


def test_a_tampered_member_is_refused(fitted, tmp_path):
    p, path, _ = fitted
    for member in MEMBERS.names():
        copy = shutil.copytree(path, tmp_path / member)
        if MEMBERS.get(member).saved_apart:  # its state is the model's weights: their checksum refuses an edit
            (copy / "model.safetensors").write_bytes((copy / "model.safetensors").read_bytes()[:-1] + b"\0")
        else:  # its JSON state, edited and sealed again: its own settings refuse it
            edit_json(copy, "portfolio.json", lambda d: d["members"][member]["params"].update(unknown=1))
        with pytest.raises(BundleError):
            Predictor.load(copy, verbose=False)


def test_each_graph_form_gives_the_members_logits_or_a_refusal_naming_it(fitted):
    p, _, folder = fitted
    split = p.prepare(folder / "test.csv")[1]
    batch = next(iter(make_loader(p.pipeline_.dataset(split), 30, shuffle=False)))
    rows, members, names = rows_of(p.pipeline_.processors, batch.inputs, batch.present), p.portfolio_.members, p.inputs_
    for name, member in members.items():
        try:
            graph = member.module()
        except ConfigError as err:
            assert repr(name) in str(err)
            continue
        upstream = {r: members[r].stacked_features(rows) for r in member.fitted_reads()}
        with torch.no_grad():
            got = graph(rows, {r: torch.from_numpy(v) for r, v in upstream.items()}) if member.reads_views else \
                graph(*[rows.prepared[n] for n in names], *[rows.present[n].float() for n in names])
        assert np.allclose(got.numpy(), member.logits(rows, upstream=upstream), atol=1e-4), name


def test_a_budget_of_about_zero_returns_quickly_with_a_usable_member(fitted):
    p, _, folder = fitted
    frame, split = p.prepare(folder / "train.csv", labelled=True)
    dataset = p.pipeline_.dataset(split, p.targets(frame, split))
    data = FitData(dataset, dataset, p.pipeline_.dataset, p.pipeline_.processors)
    for name in MEMBERS.names():
        member = NetworkMember(p._build_model(), NetworkPlan(p.config_.train, log_level=10)) \
            if MEMBERS.get(name).saved_apart else MEMBERS.get(name)(seed=0, threads=2)
        budget = TimeBudget(1e-3)
        time.sleep(0.01)
        start = time.perf_counter()
        member.fit(data, p.task_, budget, {})
        assert time.perf_counter() - start < 6, name
        assert np.isfinite(member.valid_logits(data, {})).all(), name


def test_members_that_could_run_long_stop_at_the_budget(fitted):
    """LightGBM with rounds and patience it would take minutes to spend, and the network with 1,000 epochs, each
    given 1.5 s: each stops there with the best state it reached."""
    p, _, folder = fitted
    if p.task_.output_kind != "softmax":
        pytest.skip("one task is enough")
    frame, split = p.prepare(folder / "train.csv", labelled=True)
    dataset = p.pipeline_.dataset(split, p.targets(frame, split))
    data = FitData(dataset, dataset, p.pipeline_.dataset, p.pipeline_.processors)
    patient = dict(early_stopping=False, max_epochs=1000)
    for member in (MEMBERS.get("lightgbm")(threads=2, max_rounds=10**6, patience=10**6, learning_rate=1e-4,
                                          min_data_in_leaf=1),
                   NetworkMember(p._build_model(), NetworkPlan(p.config_.train.model_copy(update=patient),
                                                               log_level=10))):
        start = time.perf_counter()
        member.fit(data, p.task_, TimeBudget(1.5), {})
        assert time.perf_counter() - start < 5, member.name
        assert np.isfinite(member.valid_logits(data, {})).all()
        rounds = member.fitted["rounds"][0] if member.reads_views else len(member.result.history)
        assert 1 <= rounds < (10**6 if member.reads_views else 1000), member.name


def test_every_member_refits_on_every_labelled_row(fitted):
    """Each member fitted on the training rows (validated on the validation rows) learns again from both with the
    settings it picked (``Member.refit``; fed the first fits' out-of-fold features of the members it reads): finite
    logits of its width on new rows, and the network trains the epochs it kept."""
    p, _, folder = fitted
    sets = [p.pipeline_.dataset(split, p.targets(frame, split))
            for frame, split in (p.prepare(folder / f"{name}.csv", labelled=True) for name in ("train", "valid"))]
    data, task = FitData(*sets, p.pipeline_.dataset, p.pipeline_.processors), p.task_
    rows = list(data.rows(p.pipeline_.dataset(p.prepare(folder / "test.csv")[1])))
    first, again, stacks = {}, {}, {}
    for name in sorted(MEMBERS.names(), key=lambda n: MEMBERS.meta(n).get("cost", 9)):
        member = NetworkMember(p._seeded_model(), NetworkPlan(p.config_.train, log_level=10, fresh=p._seeded_model)) \
            if MEMBERS.get(name).saved_apart else MEMBERS.get(name)(seed=0, threads=2)
        first[name] = member.fit(data, task, TimeBudget(None), {r: first[r].stacked(data, task) for r in member.reads})
        assert member.cannot_refit(data) is None, name
        again[name] = member.refit(data, task, TimeBudget(None), {r: stacks[r] for r in member.reads})
        if any(name in MEMBERS.get(n).reads for n in MEMBERS.names()):
            stacks[name] = first[name].stacked(data, task).joined()  # what the portfolio's refit feeds readers
            assert stacks[name].valid is None and len(stacks[name].train) == len(data.every), name
        for batch in rows:
            upstream = {r: again[r].stacked_features(batch) for r in again[name].fitted_reads()}
            logits = again[name].logits(batch, upstream=upstream)
            assert logits.shape == (len(batch.present[next(iter(batch.present))]), task.out_dim), name
            assert np.isfinite(logits).all(), name
    assert len(again["network"].result.history) == first["network"].result.restored_epoch
