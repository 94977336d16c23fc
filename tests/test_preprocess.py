"""Processors: fitted on train only, JSON state round trip, bad values become reported masks."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mmfuse.data.detect import detect_columns
from mmfuse.core.processor import EMPTY, UNKNOWN, UNREADABLE, Processor
from mmfuse.modalities.image.processor import ImageProcessor
from mmfuse.modalities.tabular.processor import TabularProcessor
from mmfuse.modalities.text.processor import TextProcessor
from mmfuse.errors import DataError


def roundtrip(proc: Processor) -> Processor:
    return Processor.from_state(json.loads(json.dumps(proc.state_dict())))


@pytest.mark.parametrize("kind", ["word", "wordpiece", "bpe"])
def test_text_tokenizers(tmp_path, kind):
    texts = pd.Series(["The cat sat on the mat", "A dog ran", "cats and dogs", "", None] * 10)
    proc = TextProcessor("t", tokenizer=kind, vocab_size=60, max_length=4).fit(texts, tmp_path)
    out = proc.transform(pd.Series(["the CAT sat on the mat today", "", "zebra"]), tmp_path)
    assert out.values.shape == (3, 4)
    assert (out.values[0] != 0).all(), "long text is truncated to max_length, not dropped"
    assert out.present.tolist() == [True, False, True]
    assert [p.kind for p in out.problems] == [EMPTY]
    assert (out.values[1] == 0).all()
    again = roundtrip(proc).transform(pd.Series(["the CAT sat on the mat today"]), tmp_path)
    assert torch.equal(again.values[0], out.values[0])
    assert proc.prepare_batch(out.values, train=True).shape[1] == 4


def test_word_vocab_lowercases_and_maps_unknown(tmp_path):
    proc = TextProcessor("t", vocab_size=100, max_length=8).fit(pd.Series(["Red apple", "green apple"]), tmp_path)
    ids = proc.transform(pd.Series(["RED Apple", "purple apple"]), tmp_path).values
    assert ids[0, 0] == ids[0, 0] and ids[0, 1] == ids[1, 1]  # "apple" same id in both rows
    assert ids[1, 0] == 1  # [UNK]


def write(path, array, mode):
    Image.fromarray(array.astype(np.uint8), mode=None).convert(mode).save(path)


def test_image_modes_stats_and_bad_files(tmp_path):
    rng = np.random.default_rng(0)
    write(tmp_path / "rgb.png", rng.integers(0, 255, (20, 30, 3)), "RGB")
    write(tmp_path / "gray.png", rng.integers(0, 255, (10, 10)), "L")
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)  # fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    (tmp_path / "corrupt.png").write_bytes(b"not an image at all")
    values = pd.Series(["rgb.png", "gray.png", "clear.png", "corrupt.png", "missing.png", None])
    proc = ImageProcessor("img", size=12, augment=True).fit(values, tmp_path)
    assert proc.channels_ == 3 and len(proc.mean_) == 3
    out = proc.transform(values, tmp_path)
    assert out.values.shape == (6, 3, 12, 12) and out.values.dtype == torch.uint8
    assert out.present.tolist() == [True, True, True, False, False, False]
    assert (out.values[2] == 255).all(), "transparent pixels become white"
    kinds = {p.row: p.kind for p in out.problems}
    assert kinds == {3: UNREADABLE, 4: UNREADABLE, 5: EMPTY}
    assert "missing.png" in next(p.detail for p in out.problems if p.row == 4)
    batch = proc.prepare_batch(out.values[:3], train=False)
    assert batch.dtype == torch.float32 and batch.shape == (3, 3, 12, 12)
    assert torch.allclose(roundtrip(proc).prepare_batch(out.values[:3], train=False), batch)
    torch.manual_seed(0)
    assert not torch.allclose(proc.prepare_batch(out.values[:1], train=True), batch[:1]), "train-time augmentation"


def test_grayscale_only_gives_one_channel(tmp_path):
    write(tmp_path / "g.png", np.full((5, 5), 100), "L")
    proc = ImageProcessor("img", size=8).fit(pd.Series(["g.png"]), tmp_path)
    assert proc.channels_ == 1
    assert proc.transform(pd.Series(["g.png"]), tmp_path).values.shape == (1, 1, 8, 8)


def test_tabular_impute_standardise_unknown(tmp_path):
    train = pd.DataFrame({"x": [1.0, 2.0, np.nan, 5.0], "c": ["a", "b", "a", None]})
    proc = TabularProcessor(["x"], ["c"]).fit(train, tmp_path)
    assert proc.medians_ == [2.0]
    out = proc.transform(pd.DataFrame({"x": [np.nan, "abc", 2.0], "c": ["a", "zzz", None]}), tmp_path)
    values = out.values.numpy()
    assert values.shape == (3, 3)
    assert values[0, 1] == 1 and values[2, 1] == 0  # missing indicator
    assert values[0, 0] == pytest.approx((2.0 - proc.means_[0]) / proc.stds_[0])
    assert values[:, 2].tolist() == [2, 1, 0]  # known, unknown bucket, missing
    kinds = sorted((p.row, p.column, p.kind) for p in out.problems)
    assert kinds == [(0, "x", EMPTY), (1, "c", UNKNOWN), (1, "x", UNREADABLE), (2, "c", EMPTY)]
    assert torch.equal(roundtrip(proc).transform(train, tmp_path).values, proc.transform(train, tmp_path).values)


def test_detection_and_overrides(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    frame = pd.DataFrame({
        "id": [f"u{i}" for i in range(40)],
        "review": [f"this product number {i} was really quite good" for i in range(40)],
        "photo": ["a.png"] * 40,
        "price": np.linspace(1, 2, 40),
        "price_text": [str(v) for v in range(40)],
        "colour": ["red", "blue"] * 20,
        "y": [0, 1] * 20})
    kinds = {c.name: c.modality for c in detect_columns(frame, "y", tmp_path)}
    assert kinds == {"id": "ignore", "review": "text", "photo": "image", "price": "numeric", "price_text": "numeric",
                     "colour": "categorical"}
    assert {c.name: c.modality for c in detect_columns(frame, "y", tmp_path, {"id": "text"}, ["colour"])}["id"] == "text"
    with pytest.raises(DataError, match="'review' was set to numeric.*'this product"):
        detect_columns(frame, "y", tmp_path, {"review": "numeric"})
    with pytest.raises(DataError, match="'colour' was set to image"):
        detect_columns(frame, "y", tmp_path, {"colour": "image"})
    with pytest.raises(Exception, match="unknown modality"):
        detect_columns(frame, "y", tmp_path, {"colour": "video"})
    with pytest.raises(DataError, match="'nope'.*not in the table"):
        detect_columns(frame, "y", tmp_path, ignore=["nope"])
