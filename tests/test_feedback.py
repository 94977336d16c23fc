"""What a user sees while a fit runs: progress through the callback (1-based epochs, every step), one log line per
epoch, the restored epoch named, nothing printed by the library; the CLI's progress as timed lines in a log."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console

from mmfuse import Predictor
from mmfuse.cli import console


def test_fit_reports_progress_and_epochs_and_prints_nothing(table_dir, caplog, capsys):
    calls = []
    with caplog.at_level(logging.INFO, logger="mmfuse"):
        predictor = Predictor(label="y", preset="fast", max_epochs=3, threads=2, ignore=["id"], batch_size=64,
                              progress=lambda what, done, total: calls.append((what, done, total)))
        predictor.fit(table_dir / "train.csv", valid=table_dir / "valid.csv")
    assert capsys.readouterr() == ("", "")  # the library never prints, bars included
    epochs = [c for c in calls if c[0].startswith("epoch ")]
    assert epochs == [(f"epoch {e}/3", step, 3) for e in (1, 2, 3) for step in (1, 2, 3)]  # 160 rows, batches of 64
    assert [r.message.split(":")[0] for r in caplog.records if r.message.startswith("epoch ")] == \
           ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    restored = predictor.metrics_["restored_epoch"]
    assert f"best epoch {restored} of 3 restored (val_accuracy " in caplog.text
    assert predictor.metrics_["valid"]["accuracy"] == pytest.approx(
        predictor.history_[restored - 1]["val_accuracy"], abs=0.02)  # the table shows the restored epoch


def test_progress_in_a_log_is_a_line_every_ten_seconds(monkeypatch):
    log, now = io.StringIO(), [0.0]
    monkeypatch.setattr(console, "errors", Console(file=log, width=200))  # not a terminal
    monkeypatch.setattr(console.time, "monotonic", lambda: now[0])
    bars = console.ProgressBars()
    for step in range(0, 1001, 50):  # 1,000 rows over 30 s
        now[0] = step * 0.03
        bars("'text': minilm features", step, 1000)
    lines = log.getvalue().splitlines()
    assert lines == ["'text': minilm features: 350/1,000 (35%, 33.3/s, 10 s)",
                     "'text': minilm features: 700/1,000 (70%, 33.3/s, 21 s)",
                     "'text': minilm features: 1,000/1,000 (100%, 33.3/s, 30 s)"]
    bars("epoch 1/3", 1, 2)
    bars("epoch 1/3", 2, 2)  # a short stage: no line
    assert log.getvalue().splitlines() == lines


def test_a_loaded_model_reports_the_progress_of_prediction(table_dir, tmp_path):
    Predictor(label="y", preset="fast", max_epochs=1, threads=2, ignore=["id"], progress=None, verbose=False).fit(
        table_dir / "train.csv").save(tmp_path / "m")
    calls = []
    loaded = Predictor.load(tmp_path / "m", verbose=False).set_runtime(progress=lambda *c: calls.append(c))
    loaded.predict(table_dir / "test.csv")
    assert ("reading images of 'image'", 60, 60) in calls
