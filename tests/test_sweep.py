"""The sweep: unimodal baselines + fusion methods, each run in its own process, winner picked on validation."""

import subprocess
import sys
from pathlib import Path

import pytest

from mmfuse.sweep import RunSpec, summarise, sweep_specs


def test_specs_cover_unimodal_baselines_and_fusions():
    specs = sweep_specs({"image": ["image"], "text": ["text"], "tabular": ["x", "colour"]}, ["concat", "gated"])
    assert [s.name for s in specs] == ["image only", "tabular only", "text only", "fusion concat", "fusion gated"]
    assert specs[1].options == {"ignore": ["image", "text"]}
    assert sweep_specs({"image": ["image"]}, ["concat"]) == [RunSpec("fusion concat", {"fusion": "concat"})]


def test_summarise_means_and_spread():
    runs = [{"name": "a", "valid": v, "test": v, "parameters": 10, "fit_seconds": 1.0, "latency_ms": 0.1,
             "peak_mb": 500} for v in (0.8, 0.9)]
    summary = summarise(runs)
    assert summary["a"]["valid"] == pytest.approx((0.85, 0.05))


def test_sweep_command(table_dir, tmp_path):
    mmfuse = str(Path(sys.executable).with_name("mmfuse"))
    result = subprocess.run(
        [mmfuse, "sweep", str(table_dir / "train.csv"), "--label", "y", "--test", str(table_dir / "test.csv"),
         "--valid", str(table_dir / "valid.csv"), "--fusions", "concat,late", "--seeds", "0", "--preset", "fast",
         "--max-epochs", "2", "--ignore", "id", "--out", str(tmp_path / "sweep")],
        capture_output=True, text=True, env={"COLUMNS": "200", "PATH": str(Path(sys.executable).parent)})
    assert result.returncode == 0, result.stderr
    for name in ("image only", "tabular only", "text only", "fusion concat", "fusion late"):
        assert name in result.stdout
    assert "winner:" in result.stdout and (tmp_path / "sweep" / "best" / "model.safetensors").is_file()
    assert len(list((tmp_path / "sweep" / "runs").iterdir())) == 5
