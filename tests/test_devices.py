"""The device path: ``auto`` resolves to a GPU only when there is one, a missing GPU or a float16 request on a CPU
is a one-line error, a fitted model rests on the CPU, and predictions and robustness run on the chosen device (here
the CPU; the GPU cases run where CUDA is available)."""

from __future__ import annotations

import multiprocessing
import time

import numpy as np
import pytest
import torch

from mmfuse import Predictor
from mmfuse.analysis.robustness import robustness
from mmfuse.core.devices import autocast_dtype, resolve_device
from mmfuse.data.dataset import Batch
from mmfuse.errors import ConfigError
from mmfuse.io.cache import FeatureCache

GPU = torch.cuda.is_available()
FAST = {"preset": "scratch", "max_epochs": 2, "progress": False, "verbose": False}


def test_resolve_device():
    assert resolve_device("auto") == ("cuda" if GPU else "cpu")
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="device must be auto, cpu or cuda"):
        resolve_device("tpu")
    if not GPU:
        with pytest.raises(ConfigError, match="no CUDA GPU is available"):
            resolve_device("cuda")
    assert autocast_dtype("bf16") is torch.bfloat16 and autocast_dtype("16") is torch.float16
    assert autocast_dtype("32") is None


@pytest.mark.skipif(GPU, reason="checks the refusals of a machine without a GPU")
def test_gpu_requests_on_a_cpu_are_one_line_errors(table_dir, tmp_path):
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        Predictor(label="y", device="cuda", cache_dir=tmp_path, **FAST).fit(table_dir / "train.csv")
    with pytest.raises(ConfigError, match="precision 16 .* needs a GPU"):
        Predictor(label="y", config={"train": {"precision": "16"}}, cache_dir=tmp_path, **FAST).fit(table_dir / "train.csv")


def test_predictions_and_robustness_on_the_chosen_device(table_dir, tmp_path):
    model = Predictor(label="y", config={"train": {"precision": "bf16"}}, cache_dir=tmp_path, **FAST)
    model.fit(table_dir / "train.csv", valid=table_dir / "valid.csv")
    assert {p.device.type for p in model.model_.parameters()} == {"cpu"}  # fitted models rest on the CPU
    auto = model.predict_proba(table_dir / "test.csv").to_numpy()
    model.device = "cpu"
    assert np.array_equal(model.predict_proba(table_dir / "test.csv").to_numpy(), auto)
    if GPU:  # bf16 autocast on either device: the same classes, probabilities within bf16 rounding
        model.device = "cuda"
        on_gpu = model.predict_proba(table_dir / "test.csv").to_numpy()
        assert np.abs(on_gpu - auto).max() < 0.05
        report = robustness(model, table_dir / "test.csv")
        assert 0 <= report.score <= 1


@pytest.mark.skipif(not GPU, reason="page-locked memory needs CUDA")
def test_batches_pin_memory():
    batch = Batch({"x": torch.ones(2, 3)}, {"x": torch.ones(2, dtype=torch.bool)}, torch.zeros(2))
    pinned = batch.pin_memory()
    assert pinned.inputs["x"].is_pinned() and pinned.present["x"].is_pinned() and pinned.target.is_pinned()


def _hold_lock(folder: str, log: str) -> None:
    with FeatureCache(folder, {"backbone": "test"}).lock():
        with open(log, "a") as f:
            f.write("in\n")
        time.sleep(0.2)
        with open(log, "a") as f:
            f.write("out\n")


def test_feature_cache_lock_lets_one_process_in_at_a_time(tmp_path):
    log = tmp_path / "log.txt"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hold_lock, args=(str(tmp_path), str(log))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert log.read_text() == "in\nout\n" * 3


def test_training_is_deterministic_without_filling_memory_and_restores_the_process(table_dir, tmp_path):
    import lightning as L

    seen = []

    class Watch(L.Callback):
        def on_train_batch_start(self, *args) -> None:
            seen.append((torch.are_deterministic_algorithms_enabled(),
                         torch.utils.deterministic.fill_uninitialized_memory))

    before = torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory
    Predictor(label="y", cache_dir=tmp_path, **FAST).fit(table_dir / "train.csv", callbacks=[Watch()])
    assert seen and set(seen) == {(True, False)}
    assert (torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory) == before


def test_runtime_settings_of_a_saved_model_from_the_cli(table_dir, tmp_path):
    from corpus import cli

    model = Predictor(label="y", cache_dir=tmp_path, **FAST).fit(table_dir / "train.csv")
    model.save(tmp_path / "m")
    plain = cli("predict", tmp_path / "m", table_dir / "test.csv", "--out", tmp_path / "a.csv")
    tuned = cli("predict", tmp_path / "m", table_dir / "test.csv", "--out", tmp_path / "b.csv", "--device", "cpu",
                "--workers", "1")
    assert plain.code == tuned.code == 0, tuned.err
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    scored = cli("evaluate", tmp_path / "m", table_dir / "test.csv", "--json", "--workers", "1", "--device", "cpu")
    assert scored.code == 0 and '"rows_scored"' in scored.out
    if not GPU:
        refused = cli("evaluate", tmp_path / "m", table_dir / "test.csv", "--device", "cuda")
        assert refused.code == 2 and "no CUDA GPU" in refused.error_line
    loaded = Predictor.load(tmp_path / "m", verbose=False).set_runtime(workers=1, stream="on")
    assert loaded.pipeline_.streaming.workers == 1 and loaded.pipeline_.streaming.mode == "on"
