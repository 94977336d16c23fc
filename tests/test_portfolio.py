"""The portfolio: cheap members beside the network, greedy ensemble selection and temperature scaling on validation,
the leaderboard, the time budget, members chosen by name, save / load / tamper, robustness and serving."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from mmfuse import Predictor
from mmfuse.errors import BundleError, ConfigError
from mmfuse.io.bundle import FORMAT_VERSION
from mmfuse.portfolio.calibration import apply_temperature, expected_calibration_error, fit_temperatures
from mmfuse.portfolio.features import tfidf, fit_idf
from mmfuse.portfolio.selection import greedy_selection
from mmfuse.tasks import create_task
from tests.conftest import make_table
from tests.corpus import cli
from tests.test_pretrained import save_tiny_hf_model
from tests.test_serve import rows_of

CHEAP = ["ngram_linear", "embedding_linear", "lightgbm"]
COMMON = dict(label="y", preset="fast", max_epochs=3, threads=2, progress=False, verbose=False, ignore=["id"])


def task_table(folder, task: str, n: int, seed: int) -> pd.DataFrame:
    """The shared generated table (text, image, number, category) with its label turned into ``task``'s."""
    frame = make_table(folder, n=n, n_classes=3 if task in ("multiclass", "multilabel") else 2, seed=seed)
    if task == "multilabel":  # the class, plus "even" when x is above 1
        frame["y"] = [f"c{y}" + ("|big" if x > 1 else "") for y, x in zip(frame["y"], frame["x"])]
    if task == "regression":
        frame["y"] = 3.0 * frame["y"] + 0.5 * frame["x"]
    return frame


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A portfolio of every member on the binary table (the text read by a tiny local BERT, so embeddings exist)."""
    folder = tmp_path_factory.mktemp("portfolio")
    for name, seed, n in (("train", 0, 160), ("valid", 1, 60), ("test", 2, 60)):
        make_table(folder, n=n, seed=seed).to_csv(folder / f"{name}.csv", index=False)
    tiny = save_tiny_hf_model(folder / "bert")
    p = Predictor(encoders={"text": f"text_hf:{tiny}"}, members=[*CHEAP, "network"], cache_dir=folder / "cache",
                  **COMMON).fit(folder / "train.csv", valid=folder / "valid.csv")
    p.save(folder / "model")
    return p, folder


def test_every_member_fits_is_weighed_and_the_ensemble_is_calibrated(fitted):
    p, folder = fitted
    board = p.leaderboard(folder / "test.csv")
    assert list(board["member"]) == [*CHEAP, "network", "ensemble"]
    assert (board["status"] == "fitted").all()
    assert board["weight"].iloc[:-1].sum() == pytest.approx(1.0)
    assert (board["valid_accuracy"] > 0.6).all() and (board["test_accuracy"] > 0.6).all()
    chosen = max(p.portfolio_.weights, key=p.portfolio_.weights.get)  # the selection favours a strong member
    assert board.set_index("member").loc[chosen, "valid_accuracy"] >= board["valid_accuracy"].iloc[:-1].median()
    ensemble = p.metrics_["ensemble"]
    assert ensemble["valid_ece_after"] <= ensemble["valid_ece_before"] + 1e-5  # (the 1e-6 floor may add a little)
    proba = p.predict_proba(folder / "test.csv")
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    for member in p.members_():  # each member alone predicts too
        alone = p.set_params(member=member).predict_proba(folder / "test.csv")
        assert alone.shape == proba.shape
    p.set_params(member=None)


def test_a_saved_portfolio_loads_to_the_same_predictions_and_refuses_tampering(fitted, tmp_path):
    p, folder = fitted
    loaded = Predictor.load(folder / "model")
    assert loaded.members_() == p.members_()
    assert np.array_equal(loaded.predict_proba(folder / "test.csv").to_numpy(),
                          p.predict_proba(folder / "test.csv").to_numpy())
    config = json.loads((folder / "model" / "config.json").read_text())
    assert config["format_version"] == FORMAT_VERSION and config["members"] == p.members_()
    for i, (name, damage) in enumerate((("portfolio.json", lambda f: f.write_text(f.read_text().replace('"weights"', '"w"'))),
                         ("portfolio.safetensors", lambda f: f.write_bytes(f.read_bytes()[:-8])),
                         ("portfolio.safetensors", lambda f: f.unlink()))):
        copy = tmp_path / f"copy-{i}"
        shutil.copytree(folder / "model", copy)
        damage(copy / name)
        with pytest.raises(BundleError, match="damaged"):
            Predictor.load(copy)


def test_removing_an_input_reaches_every_member(fitted):
    from mmfuse.analysis.robustness import robustness

    p, folder = fitted
    frame, split = p.prepare(folder / "test.csv")
    full = p.predict_outputs(split)
    for member in ("ngram_linear", "lightgbm", "embedding_linear"):
        alone = p.predict_outputs(split, member=member)
        without = p.predict_outputs(split, member=member, absent=frozenset({"image"}))
        assert np.abs(alone - without).max() > 0.05, member  # the image (the label's colour) matters to each
    report = robustness(p, folder / "test.csv")
    assert set(report.without) == set(p.inputs_) and report.score == pytest.approx(
        p.task_.metrics(p.targets(frame, split), full)["accuracy"])


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "regression"])
def test_each_cheap_member_learns_each_task(tmp_path, task):
    train, valid = tmp_path / "train.csv", tmp_path / "valid.csv"
    task_table(tmp_path, task, 200, 0).to_csv(train, index=False)
    task_table(tmp_path, task, 80, 1).to_csv(valid, index=False)
    label_sep = "|" if task == "multilabel" else None
    p = Predictor(members=["ngram_linear", "lightgbm"], label_sep=label_sep, **COMMON).fit(train, valid=valid)
    board = p.leaderboard(valid).set_index("member")
    metric = p.task_.primary_metric
    assert p.task_.name == task and p.metrics_["epochs"] == 0  # the network was not asked for
    chance = {"binary": 0.6, "multiclass": 0.45, "multilabel": 0.5}
    for member in ("ngram_linear", "lightgbm", "ensemble"):
        score = board.loc[member, f"valid_{metric}"]
        if task == "regression":
            assert score < 0.8 * pd.read_csv(valid)["y"].std(), member  # well under the spread of the target
        else:
            assert score > chance[task], member
    saved = p.save(tmp_path / "model")
    assert np.allclose(Predictor.load(saved).predict_outputs(p.prepare(valid)[1]), p.predict_outputs(p.prepare(valid)[1]))


def test_members_are_chosen_by_name_and_unknown_names_are_refused(table_dir):
    p = Predictor(exclude_members=["network"], **{**COMMON, "preset": "default"},
                  encoders={"text": "ngrams", "image": "conv"})
    p.fit(table_dir / "train.csv")
    assert "network" not in p.members_() and p.history_ == []
    skipped = {r["member"]: r["status"] for r in p.portfolio_.board}
    assert skipped["embedding_linear"].startswith("skipped: no frozen embeddings")
    with pytest.raises(ConfigError, match="unknown portfolio member 'forest'"):
        Predictor(members=["forest"], **COMMON).fit(table_dir / "train.csv")
    with pytest.raises(ConfigError, match="leaves no member"):
        Predictor(members=["lightgbm"], exclude_members=["lightgbm"], **COMMON).fit(table_dir / "train.csv")
    with pytest.raises(ConfigError, match="member 'lightgbm' is not in this model"):
        Predictor(**COMMON).fit(table_dir / "train.csv").set_params(member="lightgbm").predict(table_dir / "test.csv")


def test_a_tiny_time_limit_returns_a_valid_model_and_says_what_it_skipped(table_dir, caplog):
    p = Predictor(members=["ngram_linear", "lightgbm", "network"], time_limit=0.001,
                  **{**COMMON, "verbose": True})
    with caplog.at_level("INFO", logger="mmfuse"):
        p.fit(table_dir / "train.csv", valid=table_dir / "valid.csv")
    statuses = {r["member"]: r["status"] for r in p.portfolio_.board}
    assert statuses["ngram_linear"].startswith("skipped: estimated") and statuses["lightgbm"].startswith("skipped")
    assert statuses["network"] == "fitted"  # the last resort: the only member left trains for at least one step
    assert "member ngram_linear: skipped (estimated" in caplog.text
    assert p.predict(table_dir / "test.csv").notna().all()


def test_frozen_features_a_time_limit_cannot_afford_give_way_to_the_fast_encoders(table_dir, caplog, tmp_path):
    """Text and colour images under the default preset read MiniLM and EfficientNet features; at a limit their
    extraction would take over three quarters of, text reads its n-grams alone and images the from-scratch CNN, said in the
    log; with room for them, or with the user's own choice, the frozen encoders stay."""
    from mmfuse.config import load_config
    from mmfuse.estimators.time_plan import frozen_seconds, within_time
    from mmfuse.pipeline import input_traits, plan_inputs

    settings = {**COMMON, "preset": "default", "members": ["ngram_linear", "network"], "verbose": True}
    with caplog.at_level("INFO", logger="mmfuse"):
        p = Predictor(time_limit=4, cache_dir=tmp_path / "cold", **settings).fit(table_dir / "train.csv",
                                                                                valid=table_dir / "valid.csv")
    assert {n: plan.encoder for n, plan in p.plan_.items()} == {"text": "ngrams", "image": "cnn", "tabular": "mlp"}
    assert "time limit 4 s: the frozen features of 'text', 'image' would take ~6 s" in caplog.text
    assert p.predict(table_dir / "test.csv").notna().all()
    config = load_config("default").for_columns(input_traits(p.columns_))
    plan = plan_inputs(p.columns_, config)
    assert plan["text"].encoder == "minilm" and plan["image"].encoder == "efficientnet_lite0"
    frames = [pd.read_csv(table_dir / "train.csv"), pd.read_csv(table_dir / "valid.csv")]
    assert within_time(plan, config, frames, 60, 2, set()) == (config, None)  # ~6 s of a 60 s limit: kept
    total = sum(frozen_seconds(plan, frames, 2).values())  # up to three quarters of the limit (picked on validation)
    assert within_time(plan, config, frames, total / 0.7, 2, set()) == (config, None)
    assert within_time(plan, config, frames, total / 0.8, 2, set())[1] is not None
    kept, line = within_time(plan, config, frames, 4, 2, {"image"})  # the user named the image encoder
    assert set(kept.column_encoders) - set(config.column_encoders) == {"text"} and "'image' reads" not in line


def test_features_the_cache_holds_cost_the_time_plan_nothing(table_dir, tmp_path):
    """A warm cache: the share of a sample of an input's values whose features the cache holds is left out of the
    estimate (with the cache full, a short limit keeps the frozen encoders); other inputs still count in full."""
    from mmfuse.config import load_config
    from mmfuse.data.detect import detect_columns
    from mmfuse.estimators.time_plan import cached_shares, frozen_seconds
    from mmfuse.pipeline import InputPipeline, input_traits, plan_inputs

    frame = pd.read_csv(table_dir / "train.csv")
    columns = detect_columns(frame, "y", table_dir, ignore=["id"])
    config = load_config("default").for_columns(input_traits(columns))
    plan = plan_inputs(columns, config)
    assert cached_shares(plan, columns, frame, table_dir, tmp_path) == {"text": 0.0, "image": 0.0}
    text = InputPipeline.plan({"text": plan["text"]}, columns, tmp_path).processors["text"]
    text.fit(frame["text"], table_dir).transform(frame["text"], table_dir)  # fills the cache with the texts' features
    shares = cached_shares(plan, columns, frame, table_dir, tmp_path)
    assert shares == {"text": 1.0, "image": 0.0}
    cold, warm = frozen_seconds(plan, [frame], 2), frozen_seconds(plan, [frame], 2, shares)
    assert warm["text"] == 0 < cold["text"] and warm["image"] == cold["image"] > 0


def test_a_texts_feature_estimate_grows_with_its_characters_up_to_the_truncation():
    """MiniLM's cost per text is a fixed part plus its characters (movies' 56-character fields ~1 ms, debian's
    189-character descriptions ~2.7 ms); empty cells cost nothing and text past ``max_length`` tokens is cut."""
    from mmfuse.estimators.time_plan import value_seconds

    short, long = pd.Series(["a b c"] * 1000), pd.Series(["word " * 40] * 1000)
    assert 0 < value_seconds("text", short, {}) < value_seconds("text", long, {}) < 2 * 2.7
    assert value_seconds("text", pd.Series(["", None, "  "] * 100), {}) == 0.0
    huge = pd.Series(["word " * 2000] * 1000)
    assert value_seconds("text", huge, {"max_length": 16}) < value_seconds("text", huge, {"max_length": 128})
    assert value_seconds("image", pd.Series(["a.png", None]), {}) == value_seconds("image", pd.Series(["a.png"]), {})


def test_a_members_cost_estimate_reads_its_own_view_and_the_ngrams_a_row_has():
    """The time budget skips a member whose estimate does not fit: ``ngram_linear`` costs what its rows' n-grams
    (not the padding of the id slots) cost, ``embedding_linear`` what the embeddings cost; neither reads the other's
    view (both once counted every view: fortunes' n-gram member was estimated 651 s and took 29 s, so any limit
    under 11 minutes left the portfolio with the network alone)."""
    from mmfuse.core.processor import FlatView
    from mmfuse.portfolio.flat import FlatInputs
    from mmfuse.registry import MEMBERS

    def flat(slots: int, embedding: int) -> FlatInputs:
        ids = torch.zeros(5000, slots, dtype=torch.long)
        ids[:, :100] = torch.arange(1, 101)  # 100 n-grams a row, the rest padding
        view = FlatView(ids=ids, vocab=101, embedding=torch.zeros(5000, embedding))
        return FlatInputs({"text": view}, {"text": torch.ones(5000, dtype=torch.bool)})

    task = create_task("multiclass", "y")
    task.classes = list("abcdefghij")
    ngrams, embeddings = MEMBERS.get("ngram_linear")(), MEMBERS.get("embedding_linear")()
    assert ngrams.estimate_seconds(flat(100, 384), task) == ngrams.estimate_seconds(flat(4096, 8), task)
    assert embeddings.estimate_seconds(flat(100, 384), task) == embeddings.estimate_seconds(flat(4096, 384), task)
    assert embeddings.estimate_seconds(flat(100, 768), task) > embeddings.estimate_seconds(flat(100, 384), task)
    assert 2 < ngrams.estimate_seconds(flat(1024, 384), task) < 60  # fortunes-sized: it took 29 s
    regression = create_task("regression", "y")  # one output costs more than a tenth of ten (movies: 30 s, not 10)
    assert ngrams.estimate_seconds(flat(100, 8), regression) > ngrams.estimate_seconds(flat(100, 8), task) / 3


def test_the_cli_prints_and_writes_the_leaderboard(fitted):
    p, folder = fitted
    out = cli("leaderboard", folder / "model", folder / "test.csv", "--json")
    assert out.code == 0, out.err
    rows = json.loads(out.out)
    assert [r["member"] for r in rows] == [*CHEAP, "network", "ensemble"] and "test_accuracy" in rows[0]
    table = cli("leaderboard", folder / "model")
    assert table.code == 0 and "lightgbm" in table.out and "ensemble" in table.out
    info = cli("info", folder / "model")
    weights = ", ".join(f"{n} {w:.2f}" for n, w in p.portfolio_.weights.items())
    assert info.code == 0 and f"ensemble weights: {weights}" in " ".join(info.out.split())
    member = cli("evaluate", folder / "model", folder / "test.csv", "--member", "lightgbm", "--json")
    expected = p.set_params(member="lightgbm").evaluate(folder / "test.csv")["accuracy"]
    p.set_params(member=None)
    assert json.loads(member.out)["accuracy"] == pytest.approx(expected)
    bad = cli("predict", folder / "model", folder / "test.csv", "--member", "forest")
    assert bad.code == 2 and "member 'forest' is not in this model" in bad.error_line


def test_a_portfolio_is_served(fitted):
    from fastapi.testclient import TestClient

    from mmfuse.serve.app import create_app

    p, folder = fitted
    _, rows = rows_of(folder)
    answer = TestClient(create_app(folder / "model")).post("/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    served = [r["probabilities"] for r in answer.json()["predictions"]]
    local = p.predict_proba(folder / "test.csv").head(3)
    assert np.allclose([[s[str(c)] for c in local.columns] for s in served], local.to_numpy(), atol=1e-5)
    contributions = answer.json()["predictions"][0]["contributions"]
    assert set(contributions["removal"]) == {"image", "tabular", "text"}


def test_with_no_time_limit_the_network_gets_a_few_times_what_came_before():
    from mmfuse.portfolio import TimeBudget

    given = TimeBudget(30.0)
    assert given.set_default() is None and given.seconds == 30.0  # a given limit is kept
    budget = TimeBudget(None)
    budget.start -= 100.0  # as if 100 s went to reading, features and the cheap members
    assert budget.set_default() == pytest.approx(300.0, rel=0.01) and 199 < budget.left() < 201
    quick = TimeBudget(None)
    assert quick.set_default() == 120.0  # never below the floor


# --- the parts, on their own ------------------------------------------------------------------------------------
def test_tfidf_of_an_id_bag_is_scikit_learns():
    texts = ["a b c", "a a d", "b d d d", "c"]
    vocab = {w: i + 1 for i, w in enumerate("abcd")}
    ids = torch.tensor([[vocab[w] for w in t.split()] + [0] * (4 - len(t.split())) for t in texts])
    ours = tfidf(ids, fit_idf(ids, 5)).toarray()[:, 1:]
    theirs = TfidfVectorizer(token_pattern=r"\w", sublinear_tf=True).fit_transform(texts).toarray()
    assert np.allclose(ours, theirs, atol=1e-6)


def test_greedy_selection_weighs_the_better_member_and_temperatures_lower_the_loss():
    rng = np.random.default_rng(0)
    task = create_task("multiclass", "y")
    task.classes = ["a", "b", "c"]
    target = torch.as_tensor(rng.integers(0, 3, 300))
    good = np.full((300, 3), 0.1)
    good[np.arange(300), target.numpy()] = 0.8
    good[:60] = good[:60, [1, 2, 0]]  # right on 80% of rows
    noise = rng.dirichlet(np.ones(3), 300)
    weights = greedy_selection({"noise": noise, "good": good}, target, task, rounds=10)
    assert weights["good"] > 0.5 and sum(weights.values()) == pytest.approx(1.0)
    overconfident = np.clip(good ** 4, 1e-6, None)
    overconfident /= overconfident.sum(1, keepdims=True)
    temperature = fit_temperatures(overconfident, target, per_label=False)
    calibrated = apply_temperature(overconfident, temperature, per_label=False)
    assert temperature[0] > 1 and (calibrated.argmax(1) == overconfident.argmax(1)).all()
    assert expected_calibration_error(calibrated, target, per_label=False) < \
        expected_calibration_error(overconfident, target, per_label=False)


def test_calibration_keeps_a_floor_and_is_skipped_on_a_tiny_validation_split():
    """Members that separate a tiny validation split perfectly pushed the temperature to its bound and the
    probabilities to 1e-35: calibrated outputs keep ``FLOOR``, and under ``MIN_ROWS`` rows nothing is fitted."""
    from mmfuse.portfolio.calibration import FLOOR, MIN_ROWS
    from mmfuse.portfolio.ensemble import Portfolio

    task = create_task("multiclass", "y")
    task.classes = ["a", "b", "c"]
    certain = np.full((3, 3), 1e-3) + np.eye(3) * 0.997
    calibrated = apply_temperature(certain, [0.05], per_label=False)
    assert calibrated.min() >= FLOOR * 0.99 and np.allclose(calibrated.sum(1), 1.0, atol=1e-6)
    assert apply_temperature(np.array([[1 - 1e-9]]), [0.05], per_label=True)[0, 0] <= 1 - FLOOR * 0.99
    target = torch.arange(12) % 3
    portfolio = Portfolio()
    skipped = portfolio.select({"m": np.eye(3)[target.numpy()] * 0.97 + 0.01}, target, task, rounds=5, calibrate=True)
    assert skipped.startswith(f"not calibrated: the validation split has 12 rows, fewer than the {MIN_ROWS}")
    assert portfolio.temperatures == []


def test_out_of_fold_logits_do_not_see_their_own_rows():
    """Noise labels on rows with unique n-grams: a linear member memorises its training rows, but its out-of-fold
    logits (what the tree member stacks) score them at chance, as they would new rows; and a fold's copy does not
    start from the full fit (which saw the fold): fits on other labels give the same fold copies."""
    from mmfuse.core.processor import FlatView
    from mmfuse.portfolio.flat import FlatInputs
    from mmfuse.portfolio.learner import out_of_fold
    from mmfuse.registry import MEMBERS

    n, rng = 400, np.random.default_rng(0)
    ids = torch.as_tensor(np.sort(rng.permutation(n * 8).reshape(n, 8) + 1, axis=1))  # 8 n-grams seen in one row only
    flat = FlatInputs({"text": FlatView(ids=ids, vocab=n * 8 + 1)}, {"text": torch.ones(n, dtype=torch.bool)})
    train, valid = flat.take(torch.arange(300)), flat.take(torch.arange(300, n))
    task = create_task("binary", "y")
    task.classes = ["a", "b"]
    target = torch.as_tensor(rng.integers(0, 2, n), dtype=torch.float32)
    learner = MEMBERS.get("ngram_linear")(C=100.0, grid=(100.0,)).learn(train, target[:300], task, valid, target[300:])
    truth = target[:300].numpy()[:, None] > 0.5
    oof = out_of_fold(learner, train, target[:300], task)
    assert ((learner.logits(train) > 0) == truth).mean() > 0.95 and ((oof > 0) == truth).mean() < 0.62
    other = MEMBERS.get("ngram_linear")(C=100.0, grid=(100.0,)).learn(train, 1 - target[:300], task, valid, target[300:])
    fold = torch.arange(240)
    a, b = (m.fold_copy().learn(train.take(fold), target[fold], task) for m in (learner, other))
    assert np.array_equal(a.arrays["coef"], b.arrays["coef"])


def test_the_trees_read_one_linear_score_per_text_and_saved_scores_load_the_same():
    """Two texts, one carrying the label: ``ngram_linear`` gives the trees one out-of-fold score per text (the
    informative one separates the classes, the other does not), the same scores on new rows after a save and load,
    and the trees split on them."""
    from mmfuse.core.processor import FlatView
    from mmfuse.portfolio.flat import FlatInputs
    from mmfuse.registry import MEMBERS

    n, rng = 600, np.random.default_rng(1)
    target = torch.as_tensor(rng.integers(0, 2, n), dtype=torch.float32)
    signal = torch.as_tensor(rng.integers(1, 40, (n, 6)) + 40 * target.long().numpy()[:, None])  # ids 1-39 vs 41-79
    noise = torch.as_tensor(rng.integers(1, 80, (n, 6)))
    present = torch.ones(n, dtype=torch.bool)
    flat = FlatInputs({"a": FlatView(ids=signal, vocab=80), "b": FlatView(ids=noise, vocab=80)}, {"a": present, "b": present})
    train, valid, rows = flat.take(torch.arange(400)), flat.take(torch.arange(400, 500)), flat.take(torch.arange(500, n))
    task = create_task("binary", "y")
    task.classes = ["no", "yes"]
    linear = MEMBERS.get("ngram_linear")().learn(train, target[:400], task, valid, target[400:500])
    stacked = linear.stack(train, target[:400], task, valid, target[400:500])
    assert stacked.train.shape == (400, 2) and stacked.valid.shape == (100, 2)
    truth = target[:400].numpy() > 0.5
    assert ((stacked.train[:, 0] > 0) == truth).mean() > 0.95 and ((stacked.train[:, 1] > 0) == truth).mean() < 0.65
    meta, arrays = linear.state()
    loaded = type(linear).from_state(json.loads(json.dumps(meta)), arrays)
    assert np.array_equal(loaded.stacked_features(rows), linear.stacked_features(rows))
    trees = MEMBERS.get("lightgbm")().learn(train, target[:400], task, valid, target[400:500], {"ngram_linear": stacked})
    logits = trees.logits(rows, upstream={"ngram_linear": linear.stacked_features(rows)})
    assert ((logits[:, 0] > 0) == (target[500:].numpy() > 0.5)).mean() > 0.95


def test_multilabel_text_scores_climb_the_log_loss_past_the_frequent_labels_plateau():
    """Micro-F1 at the 0.5 threshold is flat or dips at strong penalties (every row gets the frequent label), so a
    multilabel text's own linear model picks its C on the validation log loss, which has one minimum along the path;
    the joint model keeps the primary metric."""
    from mmfuse.core.processor import FlatView
    from mmfuse.portfolio.flat import FlatInputs
    from mmfuse.registry import MEMBERS

    n, rng = 700, np.random.default_rng(2)
    rare = rng.random((n, 2)) < 0.2
    target = torch.as_tensor(np.column_stack([rng.random(n) < 0.6, rare]), dtype=torch.float32)  # a frequent label
    words = rng.integers(1, 60, (n, 8))
    words[:, :2] = np.where(rare, np.array([[61, 62]]), words[:, :2])  # each rare label has its own word
    flat = FlatInputs({"t": FlatView(ids=torch.as_tensor(words), vocab=64)}, {"t": torch.ones(n, dtype=torch.bool)})
    train, valid = flat.take(torch.arange(500)), flat.take(torch.arange(500, n))
    task = create_task("multilabel", "y")
    task.classes = ["common", "r1", "r2"]
    linear = MEMBERS.get("ngram_linear")().learn(train, target[:500], task, valid, target[500:])
    linear.stack(train, target[:500], task, valid, target[500:])
    part = linear.fitted["parts"]["t"]
    assert linear.path_metric == "primary" and part["params"]["path_metric"] == "log_loss"
    assert part["fitted"]["C"] > min(linear.grid)  # past the first step (the picked C: fitted, not a setting)
    rows = valid.select(["t"])
    logits = type(linear).from_state(linear.fitted["parts"]["t"], {k[len("part.t/"):]: v for k, v in linear.arrays.items()
                                                                    if k.startswith("part.t/")}).logits(rows)
    found = (logits[:, 1:] > 0) == (target[500:, 1:].numpy() > 0.5)
    assert found.mean() > 0.95  # the rare labels' words are read
