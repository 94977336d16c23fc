"""The streamed input pipeline: the same model as in memory, a sample cache that is hit, invalidated and shared
safely, bad rows handled alike, workers, row-group Parquet reading, and the CLI flags."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from mmfuse import Predictor
from mmfuse.data.streaming import DecodedRows, Streaming, stream_transform
from mmfuse.data.table import read_table
from mmfuse.errors import ConfigError, DataError
from mmfuse.io.samples import SampleCache, SampleRows, entry_key
from mmfuse.modalities.image.processor import ImageProcessor

from conftest import make_table
from corpus import cli

SCRATCH = {"preset": "scratch", "max_epochs": 2, "progress": False, "verbose": False}


def _fit(table_dir: Path, cache: Path, **kwargs) -> Predictor:
    return Predictor(label="y", cache_dir=cache, **SCRATCH, **kwargs).fit(table_dir / "train.csv", valid=table_dir / "valid.csv")


def test_streamed_fit_equals_in_memory(table_dir, tmp_path):
    """Streamed from the sample cache (filled, then hit) and decoded per batch: the same weights, so the same
    probabilities to the bit, as the in-memory pipeline."""
    cache = tmp_path / "cache"
    memory = _fit(table_dir, cache, stream="off")
    assert "streamed" not in memory.data_report_["train"]
    expected = memory.predict_proba(table_dir / "test.csv").to_numpy()
    first = _fit(table_dir, cache, stream="on")
    assert first.data_report_["train"]["streamed"]["image"]["cache"] == "filled"
    second = _fit(table_dir, cache, stream="on")
    assert second.data_report_["train"]["streamed"]["image"]["cache"] == "hit"
    decoded = _fit(table_dir, cache, stream="on", sample_cache=False)
    assert decoded.data_report_["train"]["streamed"]["image"]["cache"] == "off"
    for model in (first, second, decoded):
        assert np.array_equal(model.predict_proba(table_dir / "test.csv").to_numpy(), expected)
    assert isinstance(second.pipeline_.transform(pd.read_csv(table_dir / "test.csv"), table_dir, "mask",
                                                 "test").stored["image"], SampleRows)


def test_auto_streams_only_above_the_threshold(table_dir, tmp_path):
    model = Predictor(label="y", cache_dir=tmp_path, **SCRATCH).fit(table_dir / "train.csv", valid=table_dir / "valid.csv")
    frame = pd.concat([pd.read_csv(table_dir / "train.csv")] * 3, ignore_index=True)  # more rows than one chunk
    image = model.pipeline_.processors["image"]
    table_mb = len(frame) * image.channels_ * image.size ** 2 / 2**20
    for above_mb, streamed in ((table_mb * 1.1, False), (table_mb * 0.9, True)):
        model.pipeline_.use_streaming(Streaming("auto", above_mb=above_mb, cache_dir=str(tmp_path)))
        split = model.pipeline_.transform(frame, table_dir, "mask", "train")
        assert ("image" in split.report.get("streamed", {})) is streamed
    assert image.streamable and not model.pipeline_.processors["text"].streamable


def test_bad_rows_are_handled_as_in_memory(table_dir, tmp_path):
    frame = pd.read_csv(table_dir / "train.csv")
    (table_dir / "broken.png").write_bytes(b"not an image")
    frame.loc[3, "image"], frame.loc[11, "image"] = "broken.png", "missing.png"
    frame.loc[7, "image"] = np.nan
    frame.to_csv(table_dir / "bad.csv", index=False)
    for policy in ("skip", "mask"):
        reports = {}
        for mode in ("off", "on"):
            model = Predictor(label="y", cache_dir=tmp_path, on_bad_row=policy, stream=mode, **SCRATCH)
            model.fit(table_dir / "bad.csv", valid=table_dir / "valid.csv")
            reports[mode] = {k: v for k, v in model.data_report_["train"].items() if k != "streamed"}
        assert reports["on"] == reports["off"]
        assert len(reports["on"]["columns"]["image"]) >= 1
    with pytest.raises(DataError, match="column .image."):
        Predictor(label="y", cache_dir=tmp_path, on_bad_row="error", stream="on", **SCRATCH).fit(
            table_dir / "bad.csv", valid=table_dir / "valid.csv")


def test_cache_entry_changes_with_a_file_and_with_the_statistics(table_dir, tmp_path):
    frame = pd.read_csv(table_dir / "train.csv")
    proc = ImageProcessor("image", size=16).fit(frame["image"], table_dir)
    key = entry_key(proc.state_dict(), table_dir, frame["image"].tolist())
    Image.new("RGB", (16, 16), (0, 0, 0)).save(table_dir / frame.loc[0, "image"])
    os.utime(table_dir / frame.loc[0, "image"], ns=(time.time_ns(), time.time_ns() + 10**9))
    assert entry_key(proc.state_dict(), table_dir, frame["image"].tolist()) != key
    proc.mean_ = [0.0, 0.0, 0.0]
    assert entry_key(proc.state_dict(), table_dir, frame["image"].tolist()) != key
    out, how = stream_transform(proc, frame["image"], table_dir, Streaming("on", cache_dir=str(tmp_path)))
    assert how["cache"] == "filled" and int(out.values[torch.tensor([0])].max()) == 0  # the edited image, read anew


def test_sample_rows_read_and_views(tmp_path):
    values = torch.randint(0, 255, (50, 3, 4, 4), dtype=torch.uint8)
    cache = SampleCache(tmp_path)
    with cache.fill("k", 50) as writer:
        for start in range(0, 50, 16):
            writer.write(values[start:start + 16].numpy())
        writer.finish(torch.ones(50, dtype=torch.bool), [])
    rows, present, problems = cache.find("k")
    assert rows.shape == (50, 3, 4, 4) and bool(present.all()) and problems == []
    assert torch.equal(rows[torch.tensor([7, 3, 49])], values[[7, 3, 49]])
    view = rows.take(torch.tensor([10, 20, 30]))
    assert len(view) == 3 and torch.equal(view[[2, 0]], values[[30, 10]])
    with open(tmp_path / "k" / "values.npy", "r+b") as f:  # truncated behind our back
        f.truncate(os.path.getsize(tmp_path / "k" / "values.npy") - 10)
    with pytest.raises(OSError, match="truncated"):
        SampleRows(tmp_path / "k" / "values.npy")[[49]]


@pytest.mark.parametrize("damage", ["truncate values", "flip a byte", "folder for present", "swap entries",
                                    "no check"])
def test_a_sample_entry_that_fails_its_check_is_filled_again(table_dir, tmp_path, damage, caplog):
    frame = pd.read_csv(table_dir / "train.csv")
    proc = ImageProcessor("image", size=16).fit(frame["image"], table_dir)
    streaming = Streaming("on", cache_dir=str(tmp_path))
    first, how = stream_transform(proc, frame["image"], table_dir, streaming)
    entry = Path(how["folder"])
    if damage == "truncate values":
        with open(entry / "values.npy", "r+b") as f:
            f.truncate(os.path.getsize(entry / "values.npy") - 10)
    elif damage == "flip a byte":
        data = bytearray((entry / "values.npy").read_bytes())
        data[-5] ^= 1
        (entry / "values.npy").write_bytes(bytes(data))
    elif damage == "folder for present":
        (entry / "present.npy").unlink()
        (entry / "present.npy").mkdir()
    elif damage == "swap entries":  # another input's entry copied over this one
        other = Path(stream_transform(proc, frame["image"][:40], table_dir, streaming)[1]["folder"])
        for name in ("values.npy", "present.npy"):
            (entry / name).write_bytes((other / name).read_bytes())
    else:
        (entry / "check.json").unlink()
    with caplog.at_level("WARNING", logger="mmfuse"):
        again, how = stream_transform(proc, frame["image"], table_dir, streaming)
    assert how["cache"].startswith("filled again") and torch.equal(again.values[torch.arange(len(frame))],
                                                                   first.values[torch.arange(len(frame))])
    assert stream_transform(proc, frame["image"], table_dir, streaming)[1]["cache"] == "hit"


def test_an_unwritable_sample_cache_decodes_on_read(table_dir, tmp_path, caplog):
    frame = pd.read_csv(table_dir / "train.csv")
    proc = ImageProcessor("image", size=16).fit(frame["image"], table_dir)
    (tmp_path / "a-file").write_text("x")
    with caplog.at_level("WARNING", logger="mmfuse"):
        out, how = stream_transform(proc, frame["image"], table_dir, Streaming("on", cache_dir=str(tmp_path / "a-file")))
    assert how["cache"] == "off" and len(out.values[torch.arange(3)]) == 3
    assert any("cannot be written" in r.message for r in caplog.records)


def test_a_failed_fill_leaves_no_entry(tmp_path):
    cache = SampleCache(tmp_path)
    with pytest.raises(RuntimeError):
        with cache.fill("k", 10) as writer:
            writer.write(np.zeros((5, 2), np.float32))
            raise RuntimeError("killed half way")
    assert cache.find("k") is None and not (tmp_path / "k").exists()


def _fill_once(folder: str, key: str, log: str) -> None:
    cache = SampleCache(Path(folder))
    with cache.lock(key):
        if cache.find(key) is None:
            with open(log, "a") as f:
                f.write("filled\n")
            time.sleep(0.3)
            with cache.fill(key, 4) as writer:
                writer.write(np.arange(8, dtype=np.float32).reshape(4, 2))
                writer.finish(torch.ones(4, dtype=torch.bool), [])
    assert cache.find(key) is not None


def test_processes_sharing_the_cache_fill_an_entry_once(tmp_path):
    log = tmp_path / "log.txt"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_fill_once, args=(str(tmp_path), "k", str(log))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert log.read_text() == "filled\n"


def test_workers_prepare_the_same_batches(table_dir, tmp_path):
    model = _fit(table_dir, tmp_path, stream="on", workers=1)
    with_workers = model.predict_proba(table_dir / "test.csv").to_numpy()
    model.pipeline_.use_streaming(Streaming("on", workers=0, cache_dir=str(tmp_path)))
    assert np.array_equal(model.predict_proba(table_dir / "test.csv").to_numpy(), with_workers)


def test_decoded_rows_follow_views(table_dir):
    frame = pd.read_csv(table_dir / "train.csv")
    proc = ImageProcessor("image", size=16).fit(frame["image"], table_dir)
    rows = DecodedRows(proc, frame["image"], table_dir).take(torch.tensor([5, 9]))
    assert torch.equal(rows[[1]], proc.transform(frame["image"].iloc[[9]], table_dir).values)


def test_bad_settings_are_one_line(table_dir, tmp_path):
    with pytest.raises(ConfigError, match="stream must be auto, on or off"):
        _fit(table_dir, tmp_path, stream="sometimes")
    result = cli("fit", table_dir / "train.csv", "--label", "y", "--workers", "-1")
    assert result.code == 2 and "--workers" in result.out + result.err


def test_cli_streams_with_workers(table_dir, tmp_path):
    out = tmp_path / "model"
    result = cli("fit", table_dir / "train.csv", "--label", "y", "--valid", table_dir / "valid.csv", "--preset",
                 "scratch", "--max-epochs", "1", "--stream", "on", "--workers", "1", "--cache-dir", tmp_path / "c",
                 "--out", out)
    assert result.code == 0, result.err
    assert "input 'image' streamed" in result.err
    assert json.loads((out / "data_report.json").read_text())["train"]["streamed"]["image"]["cache"] == "filled"


def test_parquet_read_by_row_groups(tmp_path):
    frame = make_table(tmp_path, n=30)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "t.parquet", row_group_size=7)
    assert pq.ParquetFile(tmp_path / "t.parquet").num_row_groups == 5
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.parquet").frame, frame)
