"""Sets per cell: several images (or texts, clips, sequences) of one modality in one cell, as a JSON list, a
separated string, a folder or a glob; read element by element, pooled by the network, averaged for the portfolio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mmfuse import Predictor
from mmfuse.core.set_processor import SetProcessor, drop_elements, keep_elements
from mmfuse.core.sets import MAX_SET_ELEMENTS, set_elements
from mmfuse.data.detect import detect_columns
from mmfuse.data.streaming import chunk_rows
from mmfuse.errors import DataError
from mmfuse.nn.sets import SetEncoder
from tests.conftest import write_image


def test_set_cells_are_lists_separated_strings_folders_and_globs(tmp_path):
    (tmp_path / "shots").mkdir()
    for name in ("b.png", "a.png", ".hidden.png", "c.txt"):
        (tmp_path / "shots" / name).write_bytes(b"x")
    assert set_elements('["x.png", " y.png ", ""]', tmp_path) == ["x.png", "y.png"]
    assert set_elements("x.png | y.png|", tmp_path, sep="|") == ["x.png", "y.png"]
    assert [Path(p).name for p in set_elements("shots", tmp_path)] == ["a.png", "b.png", "c.txt"]  # sorted, no hidden
    assert [Path(p).name for p in set_elements("shots/*.png", tmp_path)] == [".hidden.png", "a.png", "b.png"]
    assert set_elements("shots/*.jpg", tmp_path) == [] and set_elements(float("nan"), tmp_path) == []
    assert set_elements("one.png", tmp_path) == ["one.png"]
    with pytest.raises(ValueError, match="a set cell must be a JSON list of strings"):
        set_elements("[1, 2]", tmp_path)
    with pytest.raises(ValueError, match="nested 2 levels deep"):
        set_elements('[["a.png"]]', tmp_path)
    with pytest.raises(ValueError, match=f"above the limit of {MAX_SET_ELEMENTS}"):
        set_elements(json.dumps([f"{i}.png" for i in range(MAX_SET_ELEMENTS + 1)]), tmp_path)


def noisy_sets(folder: Path, n: int, seed: int, sizes=(1, 4)) -> pd.DataFrame:
    """Rows of 1-4 small images whose dominant colour is the row's class in 70% of them (else another class):
    one image says little, several say more."""
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        y = int(rng.integers(3))
        paths = []
        for j in range(int(rng.integers(sizes[0], sizes[1] + 1))):
            colour = y if rng.random() < 0.7 else int(rng.integers(3))
            path = f"img/{seed}_{i}_{j}.png"
            write_image(folder / path, colour, rng, size=12)
            paths.append(path)
        rows.append({"photos": json.dumps(paths), "y": y})
    return pd.DataFrame(rows)


def test_detection_names_the_elements_modality_and_the_set(tmp_path):
    frame = noisy_sets(tmp_path, 30, 0)
    frame["trace"] = [json.dumps([1.0, 2.0, 3.0])] * 30  # a list of numbers stays a sequence
    frame["joined"] = frame["photos"].map(lambda c: "|".join(json.loads(c)))
    for i in range(30):  # a folder of images per row
        (tmp_path / "shots" / str(i)).mkdir(parents=True)
        for path in json.loads(frame["photos"][i]):
            (tmp_path / "shots" / str(i) / Path(path).name).write_bytes((tmp_path / path).read_bytes())
    frame["folder"] = [f"shots/{i}" for i in range(30)]
    columns = {c.name: c for c in detect_columns(frame, "y", tmp_path, set_seps={"joined": "|"})}
    photos = columns["photos"]
    assert photos.modality == "image" and photos.traits["set"] == {} and photos.traits["colour"] is True
    assert photos.reason.startswith("image set (~2.")
    assert columns["trace"].modality == "sequence" and "set" not in columns["trace"].traits
    assert columns["joined"].modality == "image" and columns["joined"].traits["set"] == {"sep": "|"}
    assert columns["folder"].modality == "image" and "set" in columns["folder"].traits
    with pytest.raises(DataError, match="'nope'"):
        detect_columns(frame, "y", tmp_path, set_seps={"nope": "|"})
    # one column in every documented form, a third each: JSON lists, folders and globs
    frame["mixed"] = [frame["photos"][i] if i % 3 == 0 else frame["folder"][i] if i % 3 == 1 else
                      f"shots/{i}/*.png" for i in range(30)]
    mixed = next(c for c in detect_columns(frame, "y", tmp_path) if c.name == "mixed")
    assert mixed.modality == "image" and "set" in mixed.traits and mixed.reason.startswith("image set (~2.")
    overridden = next(c for c in detect_columns(frame, "y", tmp_path, {"mixed": "image", "folder": "image"})
                      if c.name in ("mixed", "folder"))
    assert overridden.modality == "image" and "set" in overridden.traits and "(a set per cell)" in overridden.reason


def fitted_processor(tmp_path, frame) -> SetProcessor:
    return SetProcessor("photos", "image", {"size": 12, "augment": False}).fit(frame["photos"], tmp_path)


def test_the_processor_stores_each_element_with_its_presence(tmp_path):
    frame = noisy_sets(tmp_path, 12, 0)
    processor = fitted_processor(tmp_path, frame)
    k = processor.elements_
    assert k == frame["photos"].map(lambda c: len(json.loads(c))).max()
    cells = pd.Series([frame["photos"][0], "[]", json.dumps(["img/0_0_0.png", "img/missing.png"]),
                       json.dumps([f"img/0_{i}_0.png" for i in range(k + 2)])])
    out = processor.transform(cells, tmp_path)
    assert out.values.shape == (4, k, 3 * 12 * 12 + 1) and out.values.dtype == torch.uint8
    counts = out.values[:, :, -1].sum(1).tolist()
    assert counts == [len(json.loads(frame["photos"][0])), 0, 1, k]
    assert out.present.tolist() == [True, False, True, True]
    kinds = {(p.row, p.kind) for p in out.problems}
    assert (1, "empty") in kinds and (2, "unreadable") in kinds and (3, "truncated") in kinds
    missing = next(p for p in out.problems if p.kind == "unreadable")
    assert "element 2 (img/missing.png)" in missing.detail
    batch = processor.prepare_batch(out.values, train=False)
    assert batch.shape == (4, k, 3 * 12 * 12 + 1) and batch.dtype == torch.float32
    assert torch.equal(batch[..., -1], out.values[..., -1].float())
    assert batch[1, :, :-1].abs().sum() == 0  # absent elements are zeros
    state = json.loads(json.dumps(processor.state_dict()))
    from mmfuse.core.processor import Processor
    again = Processor.from_state(state)
    assert torch.equal(again.transform(cells, tmp_path).values, out.values)
    flat = processor.flat(batch)
    assert flat.dense.shape == (4, 192)
    dropped = drop_elements(batch, 1.0, torch.Generator().manual_seed(0))
    assert dropped[..., -1].sum(1).tolist() == [1, 0, 1, 1]  # every row keeps one element
    kept = keep_elements(batch, 2, torch.Generator().manual_seed(0))
    assert kept[..., -1].sum(1).tolist() == [min(2, counts[0]), 0, 1, 2]
    assert set(kept[0, :, -1].nonzero().squeeze(1).tolist()) <= set(batch[0, :, -1].nonzero().squeeze(1).tolist())


def test_a_bad_element_stops_skips_or_is_masked_naming_the_element(tmp_path):
    train = noisy_sets(tmp_path, 60, 0)
    bad = train.head(6).copy()
    bad.loc[2, "photos"] = json.dumps(["img/0_0_0.png", "img/gone.png"])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    train.to_csv(tmp_path / "train.csv", index=False)
    p = Predictor(label="y", preset="fast", members=["network"], max_epochs=1, threads=1, progress=False,
                  verbose=False).fit(tmp_path / "train.csv")
    with pytest.raises(DataError, match=r"row 2, column 'photos': element 2 \(img/gone.png\): image file not found"):
        p.set_params(on_bad_row="error").predict(tmp_path / "bad.csv")
    assert list(p.set_params(on_bad_row="skip").predict(tmp_path / "bad.csv").index) == [0, 1, 3, 4, 5]
    masked = p.set_params(on_bad_row="mask").predict_frame(tmp_path / "bad.csv")
    assert len(masked) == 6 and masked["inputs_used"].tolist() == ["photos"] * 6
    bad.loc[2, "photos"] = json.dumps(["img/gone.png", "img/lost.png", "img/0_0_0.png"])  # two bad in one row
    bad.to_csv(tmp_path / "worse.csv", index=False)
    report = p.prepare(tmp_path / "worse.csv")[1].report["columns"]["photos"]["masked"]
    assert report["rows"] == [2] and report["count"] == 1 and report["values"] == 2  # one row, not "rows 2, 2"


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_pooling_ignores_the_order_and_the_padding_of_the_elements(pooling):
    torch.manual_seed(0)
    inner = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh())
    inner.output_dim = 5
    encoder = SetEncoder(inner, elements=4, element_shape=[6], pooling=pooling)
    if pooling == "attention":
        torch.nn.init.normal_(encoder.pool.query)
    values = torch.randn(3, 4, 6)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.float32)
    x = torch.cat([values * mask[..., None], mask[..., None]], -1)
    out = encoder(x)
    shuffled = x[:, [2, 0, 3, 1]]
    padded = torch.cat([x, torch.zeros(3, 2, 7)], 1)  # two more empty slots
    torch.testing.assert_close(encoder(shuffled), out)
    wider = SetEncoder(inner, 6, [6], pooling=pooling)
    wider.load_state_dict(encoder.state_dict())
    torch.testing.assert_close(wider(padded), out)
    assert torch.equal(out[2], torch.zeros(5))  # no element: zeros (the fusion's missing input)
    torch.testing.assert_close(out[1], inner(values[1, 0]))  # one element: its own features, either pooling


def test_a_set_of_images_beats_one_image_per_row_and_round_trips(tmp_path):
    for name, seed, n in (("train", 0, 240), ("valid", 1, 90), ("test", 2, 150)):
        frame = noisy_sets(tmp_path, n, seed, sizes=(3, 4))
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        rng = np.random.default_rng(seed)
        frame.assign(photos=[rng.choice(json.loads(c)) for c in frame["photos"]]).to_csv(
            tmp_path / f"{name}-one.csv", index=False)
    common = dict(label="y", preset="fast", members=["network", "lightgbm"], max_epochs=12, threads=2,
                  progress=False, verbose=False, seed=0)
    sets = Predictor(**common).fit(tmp_path / "train.csv", valid=tmp_path / "valid.csv")
    one = Predictor(**common).fit(tmp_path / "train-one.csv", valid=tmp_path / "valid-one.csv")
    assert "set" in sets.columns_[0].traits and "set" not in one.columns_[0].traits
    on_sets = sets.evaluate(tmp_path / "test.csv")["accuracy"]
    on_one = one.evaluate(tmp_path / "test-one.csv")["accuracy"]
    assert on_sets > on_one + 0.05, (on_sets, on_one)
    from mmfuse.analysis.robustness import robustness

    kept = robustness(sets, tmp_path / "test.csv").elements["photos"]  # the score with 1..4 elements kept
    assert len(kept) == 4 and kept[-1] == pytest.approx(on_sets) and kept[-1] > kept[0] + 0.05, kept
    sets.save(tmp_path / "model")
    loaded = Predictor.load(tmp_path / "model", verbose=False)
    pd.testing.assert_frame_equal(loaded.predict_proba(tmp_path / "test.csv"), sets.predict_proba(tmp_path / "test.csv"))


@pytest.fixture(scope="module")
def set_model(tmp_path_factory):
    """A served model of a column of image sets, and a test client for it."""
    from fastapi.testclient import TestClient

    from mmfuse.serve import create_app
    from mmfuse.serve.limits import ServeLimits

    folder = tmp_path_factory.mktemp("set-model")
    noisy_sets(folder, 150, 0).to_csv(folder / "train.csv", index=False)
    noisy_sets(folder, 20, 2).to_csv(folder / "test.csv", index=False)
    Predictor(label="y", preset="fast", members=["network"], max_epochs=3, threads=2, progress=False,
              verbose=False).fit(folder / "train.csv").save(folder / "model")
    return folder, TestClient(create_app(folder / "model", ServeLimits(max_rows=8)))


def b64(path: Path) -> str:
    import base64

    return base64.b64encode(path.read_bytes()).decode()


def test_the_server_takes_a_list_of_uploads_for_a_set_field(set_model):
    folder, client = set_model
    test = pd.read_csv(folder / "test.csv").head(3)
    rows = [{"photos": [b64(folder / p) for p in json.loads(cell)]} for cell in test["photos"]]
    answer = client.post("/predict", json={"rows": rows, "explain": False})
    assert answer.status_code == 200, answer.text
    library = Predictor.load(folder / "model", verbose=False).predict_proba(folder / "test.csv").head(3)
    for p, (_, expected) in zip(answer.json()["predictions"], library.iterrows()):
        assert p["probabilities"] == pytest.approx({str(k): v for k, v in expected.items()}, abs=1e-5)
        assert p["inputs_used"] == ["photos"]
    paths = json.loads(test["photos"][0])
    files = [("photos", (f"{i}.png", (folder / path).read_bytes(), "image/png")) for i, path in enumerate(paths)]
    form = client.post("/predict", files=files, data={"explain": "false"})
    assert form.status_code == 200, form.text
    assert form.json()["predictions"][0]["probabilities"] == pytest.approx(
        answer.json()["predictions"][0]["probabilities"], abs=1e-5)
    assert client.get("/metadata").json()["columns"][0]["set"] is True
    too_many = client.post("/predict", json={"rows": [{"photos": [rows[0]["photos"][0]] * (MAX_SET_ELEMENTS + 1)}]})
    assert too_many.status_code == 422 and too_many.json()["field"] == "rows[0].photos"
    broken = client.post("/predict", json={"rows": [{"photos": [rows[0]["photos"][0], "bm90IGFuIGltYWdl"]}]})
    assert broken.status_code == 200 and broken.json()["predictions"][0]["inputs_used"] == ["photos"]
    assert "photos: masked" in broken.json()["predictions"][0]["notes"][0]


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_a_set_input_exports_to_onnx_with_its_mask(set_model, tmp_path, pooling):
    """The exported graph reads each set as a padded batch of elements with their presence: fp32 parity <= 1e-4 on
    rows of 1 to 4 images and on a row whose set is empty."""
    from mmfuse.estimators.onnx import export_onnx

    folder, _ = set_model
    test = pd.read_csv(folder / "test.csv")
    test.loc[3, "photos"] = "[]"
    test.to_csv(tmp_path / "test.csv", index=False)
    predictor = Predictor(label="y", preset="fast", members=["network"], max_epochs=2, threads=2, progress=False,
                          verbose=False, set_pooling=pooling).fit(folder / "train.csv")
    assert (predictor.model_.encoders["photos"].pool.query is not None) == (pooling == "attention")
    path = predictor.save(tmp_path / "m")
    export_onnx(predictor, path / "model.onnx")
    torch_fp32 = Predictor.load(path, verbose=False)
    torch_fp32.config_.train.precision = "32"
    expected = torch_fp32.predict_proba(tmp_path / "test.csv").to_numpy()
    got = Predictor.load(path, verbose=False, backend="onnx").predict_proba(tmp_path / "test.csv").to_numpy()
    assert np.abs(expected - got).max() <= 1e-4 and (expected.argmax(1) == got.argmax(1)).all()


def test_inference_batches_hold_as_many_elements_as_single_values_would(set_model):
    """A set of 4 images makes a batch (and a streamed chunk) of 64 rows (256 images through the encoder at once, as
    256 single images would), and the outputs do not depend on the batch size."""
    folder, _ = set_model
    predictor = Predictor.load(folder / "model", verbose=False)
    assert predictor.pipeline_.set_sizes() == {"photos": 4}
    assert predictor.pipeline_.batch_rows() == 64 and predictor.pipeline_.batch_rows(10) == 2
    assert chunk_rows(predictor.pipeline_.processors["photos"]) == 64  # streamed: 256 images a chunk, not 1,024
    split = predictor.pipeline_.transform(pd.read_csv(folder / "test.csv"), folder, "mask", "test")
    np.testing.assert_allclose(predictor.predict_outputs(split), predictor.predict_outputs(split, batch_size=3),
                               atol=1e-6)


def test_streamed_sets_give_the_same_model_as_sets_in_memory(set_model, tmp_path):
    folder, _ = set_model
    common = dict(label="y", preset="fast", members=["network"], max_epochs=2, threads=2, progress=False,
                  verbose=False, seed=0, cache_dir=tmp_path / "cache")
    held = Predictor(stream="off", **common).fit(folder / "train.csv")
    streamed = Predictor(stream="on", **common).fit(folder / "train.csv")
    assert streamed.data_report_["train"]["streamed"]["photos"]["cache"] == "filled"
    pd.testing.assert_frame_equal(streamed.predict_proba(folder / "test.csv"), held.predict_proba(folder / "test.csv"))


def test_two_process_ddp_trains_a_set_model_as_one_process_does(set_model, tmp_path):
    import subprocess
    import sys

    folder, _ = set_model
    mmfuse = str(Path(sys.executable).with_name("mmfuse"))
    env = {"PATH": str(Path(sys.executable).parent), "COLUMNS": "200", "HF_HUB_OFFLINE": "1"}
    scores = []
    for name, extra in (("one", []), ("two", ["--devices", "2", "--strategy", "ddp"])):
        run = subprocess.run([mmfuse, "fit", str(folder / "train.csv"), "--label", "y", "--preset", "fast",
                              "--members", "network", "--max-epochs", "4", "--batch-size", "32", "--seed", "0",
                              "--threads", "1", "--out", str(tmp_path / name), *extra],
                             capture_output=True, text=True, env=env, timeout=600)
        assert run.returncode == 0, run.stderr
        scores.append(Predictor.load(tmp_path / name, verbose=False).evaluate(folder / "test.csv")["accuracy"])
    assert abs(scores[0] - scores[1]) <= 0.1, scores


def text_audio_sequence_sets(folder: Path, n: int, seed: int) -> pd.DataFrame:
    """Each row: 1-3 reviews, 1-3 clips and 1-3 sequences, each saying the class in 90% of them."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    words = {0: ["calm", "grey", "slow"], 1: ["loud", "quick", "sharp"]}
    rows = []
    for i in range(n):
        y = int(rng.integers(2))
        says = [y if rng.random() < 0.9 else 1 - y for _ in range(int(rng.integers(1, 4)))]
        reviews = [" ".join(rng.choice(words[s], 3)) for s in says]
        clips, traces = [], []
        for j, s in enumerate(says):
            t = np.arange(int(8000 * 0.25)) / 8000
            sf.write(folder / "clips" / f"{seed}_{i}_{j}.wav", (0.4 * np.sin(2 * np.pi * (300 if s else 1200) * t))
                     .astype(np.float32), 8000)
            np.save(folder / "clips" / f"{seed}_{i}_{j}.npy", rng.normal(s, 1.0, (6, 2)).astype(np.float32))
            clips.append(f"clips/{seed}_{i}_{j}.wav")
            traces.append(f"clips/{seed}_{i}_{j}.npy")
        rows.append({"reviews": json.dumps(reviews), "clips": json.dumps(clips), "traces": json.dumps(traces), "y": y})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("column", ["reviews", "clips", "traces"])
def test_sets_of_texts_clips_and_sequences(tmp_path, column):
    frame = text_audio_sequence_sets(tmp_path, 160, 0)
    keep = ["y", column]
    frame[keep].to_csv(tmp_path / "train.csv", index=False)
    text_audio_sequence_sets(tmp_path, 60, 1)[keep].to_csv(tmp_path / "test.csv", index=False)
    config = {"preprocess": {"audio": {"sample_rate": 8000, "max_seconds": 0.25, "n_mels": 16}},
              "portfolio": {"probe_epochs": 0}}  # the network trains whatever it adds (tests/test_probe.py)
    p = Predictor(label="y", preset="fast", members=["network", "ngram_linear", "lightgbm"], max_epochs=8,
                  threads=2, progress=False, verbose=False, seed=0, config=config, refit=False)
    p.fit(tmp_path / "train.csv")
    info = p.columns_[0]
    assert info.modality == {"reviews": "text", "clips": "audio", "traces": "sequence"}[column]
    assert "set" in info.traits and info.reason.startswith(f"{info.modality} set (~2")
    assert p.evaluate(tmp_path / "test.csv")["accuracy"] > 0.75
    board = p.leaderboard().set_index("member")["status"]  # the cheap members read the elements' mean views
    assert board["network"] == board["ngram_linear"] == "fitted"
    assert board["lightgbm"] == "fitted" or (column == "reviews" and board["lightgbm"].startswith("skipped"))
