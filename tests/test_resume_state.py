"""Resume is exact for every encoder family: a fit interrupted after epoch 2 and resumed in the same process ends
with the very weights (``torch.equal``), metrics and history of an uninterrupted fit, buffers (batch-norm
statistics), optimizer moments in each parameter's memory layout (channels-last convolutions), augmentation and
dropout RNG included."""

from __future__ import annotations

import json

import lightning as L
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from conftest import write_image

from mmfuse import Predictor
from mmfuse.errors import ConfigError
from mmfuse.io.checkpoint import saved_epoch

COLUMNS = ["text", "image", "photo", "clip", "signal"]  # besides x, colour (tabular) and y

# each case covers a few encoder families at once; together, every registered family but text_hf (minilm's code path)
CASES = {
    "gru+cnn+audio_cnn+seq_lstm": ({"text": "gru", "image": "cnn", "audio": "audio_cnn", "sequence": "seq_lstm"},
                                   ["text", "image", "clip", "signal"]),
    "lstm+conv+audio_gru+seq_gru": ({"text": "lstm", "image": "conv", "audio": "audio_gru", "sequence": "seq_gru"},
                                    ["text", "image", "clip", "signal"]),
    "transformer+seq_conv": ({"text": "transformer", "sequence": "seq_conv"}, ["text", "signal"]),
    "bow": ({"text": "bow"}, ["text"]),
    "ngrams": ({"text": "ngrams"}, ["text"]),
    "minilm+ngrams+efficientnet_lite0": ({"text": "minilm", "image": "efficientnet_lite0"}, ["text", "photo"]),
}


class Interrupted(Exception):
    pass


class StopAtEpoch(L.Callback):
    """Raises when the (0-based) epoch ``epoch`` starts: the checkpoint of the epoch before it is on disk."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, module) -> None:
        if trainer.current_epoch == self.epoch:
            raise Interrupted


def make_rows(folder, n: int, seed: int):
    rng = np.random.default_rng(seed)
    words = {0: "calm blue river cool quiet", 1: "hot red fire loud bright"}
    rows = []
    for i in range(n):
        y = int(rng.integers(2))
        write_image(folder / f"g{seed}_{i}.png", y, rng, size=16, mode="L")
        write_image(folder / f"c{seed}_{i}.png", y, rng, size=16)
        t = np.arange(int(8000 * rng.uniform(0.2, 0.4))) / 8000
        sf.write(folder / f"a{seed}_{i}.wav", (0.4 * np.sin(2 * np.pi * (300 if y else 1200) * t)).astype(np.float32),
                 8000)
        rows.append({"text": " ".join(rng.choice(words[y if rng.random() < 0.7 else 1 - y].split(), 4)),
                     "image": f"g{seed}_{i}.png", "photo": f"c{seed}_{i}.png", "clip": f"a{seed}_{i}.wav",
                     "signal": json.dumps(rng.normal(y, 1.0, (int(rng.integers(3, 9)), 2)).round(3).tolist()),
                     "x": float(y + rng.normal(0, 1.5)), "colour": "ab"[int(rng.random() < 0.5)], "y": y})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume_state")
    make_rows(folder, 64, 0).to_csv(folder / "train.csv", index=False)
    make_rows(folder, 24, 1).to_csv(folder / "valid.csv", index=False)
    return folder


def options(tables, encoders: dict[str, str], used: list[str]) -> dict:
    return dict(preset="default", encoders=encoders, ignore=[c for c in COLUMNS if c not in used], max_epochs=3,
                batch_size=16, threads=2, seed=1, progress=False, verbose=False, cache_dir=tables / "cache")


@pytest.mark.parametrize("case", list(CASES))
def test_interrupted_then_resumed_equals_uninterrupted(tables, tmp_path, case):
    opts = options(tables, *CASES[case])
    data = dict(train=tables / "train.csv", valid=tables / "valid.csv")
    whole = Predictor(label="y", **opts).fit(**data)

    with pytest.raises(Interrupted):
        Predictor(label="y", **opts).fit(**data, callbacks=[StopAtEpoch(2)], checkpoint_dir=tmp_path / "ck")
    assert saved_epoch(tmp_path / "ck") == 2
    resumed = Predictor(label="y", **opts).fit(**data, checkpoint_dir=tmp_path / "ck", resume=True)

    expected, got = whole.model_.state_dict(), resumed.model_.state_dict()
    assert expected.keys() == got.keys()
    differ = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not differ, f"weights or buffers differ after resume: {differ[:5]}"
    assert resumed.metrics_["valid"] == whole.metrics_["valid"]
    timing = ("seconds", "train_seconds", "valid_seconds")
    assert [{k: v for k, v in e.items() if k not in timing} for e in resumed.history_] == \
           [{k: v for k, v in e.items() if k not in timing} for e in whole.history_]


def test_an_interrupted_fit_is_neither_resumed_nor_discarded_silently(tables, tmp_path):
    opts = {**options(tables, {"text": "bow"}, ["text"]), "max_epochs": 2}
    data = dict(train=tables / "train.csv", valid=tables / "valid.csv")
    with pytest.raises(Interrupted):
        Predictor(label="y", **opts).fit(**data, callbacks=[StopAtEpoch(1)], checkpoint_dir=tmp_path / "ck")
    with pytest.raises(ConfigError, match=r"holds an interrupted fit \(saved after epoch 1\): continue it with "
                                          r"--resume \(resume=True\), or discard it with --restart"):
        Predictor(label="y", **opts).fit(**data, checkpoint_dir=tmp_path / "ck")
    assert saved_epoch(tmp_path / "ck") == 1  # untouched
    restarted = Predictor(label="y", **opts).fit(**data, checkpoint_dir=tmp_path / "ck", restart=True)
    assert len(restarted.history_) == 2 and saved_epoch(tmp_path / "ck") == 2


@pytest.mark.parametrize("how", ["fit", "resume", "restart"])
def test_a_checkpoint_folder_mmfuse_did_not_write_is_refused_and_kept(tables, tmp_path, how, monkeypatch):
    """A folder that holds anything but mmfuse's epochs and members is refused in one line before any work, with
    or without --resume / --restart, and nothing in it is touched."""
    from mmfuse.estimators import base

    folder = tmp_path / "ck"
    (folder / "epoch-0001").mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    monkeypatch.setattr(base, "read_splits", lambda *a: pytest.fail("work started"))
    with pytest.raises(ConfigError, match=r"ck exists and is not an mmfuse checkpoint folder \(it holds 'notes.txt'\): "
                                          r"mmfuse keeps an interrupted fit's state there, so move it away"):
        Predictor(label="y", **options(tables, {"text": "bow"}, ["text"])).fit(
            tables / "train.csv", checkpoint_dir=folder, resume=how == "resume", restart=how == "restart")
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-0001", "notes.txt"]


def test_removing_a_checkpoint_removes_only_what_mmfuse_wrote(tmp_path):
    from mmfuse.io.checkpoint import remove_checkpoints

    for name in ("epoch-0003", "members/lightgbm", ".epoch-0004.writing-17"):
        (tmp_path / "ck" / name).mkdir(parents=True)
        (tmp_path / "ck" / name / "state.json").write_text("{}")
    remove_checkpoints(tmp_path / "ck")
    assert not (tmp_path / "ck").exists()  # all of it was mmfuse's: the folder goes too
    (tmp_path / "ck" / "epoch-0003").mkdir(parents=True)
    (tmp_path / "ck" / "notes.txt").write_text("mine")  # written there during the fit, by someone else
    remove_checkpoints(tmp_path / "ck")
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["notes.txt"]
