"""The sweep: unimodal baselines + fusion methods, each run in its own process, winner picked on validation."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmfuse.analysis.sweep import RunSpec, summarise, sweep_specs


def test_specs_cover_unimodal_baselines_fusions_members_and_the_portfolio():
    specs = sweep_specs({"image": ["image"], "text": ["text"], "tabular": ["x", "colour"]}, ["concat", "gated"],
                        ["ngram_linear", "lightgbm"])
    assert [s.name for s in specs] == ["image only", "tabular only", "text only", "fusion concat", "fusion gated",
                                       "member ngram_linear", "member lightgbm", "portfolio"]
    assert specs[1].options == {"ignore": ["image", "text"], "members": ["network"]}  # the network alone
    assert specs[-1].options == {"members": ["ngram_linear", "lightgbm", "network"]}
    assert sweep_specs({"image": ["image"]}, ["concat"]) == [RunSpec("fusion concat", {"fusion": "concat",
                                                                                        "members": ["network"]})]


def _run(name, seed, valid, image_curve):
    return {"name": name, "seed": seed, "valid": valid, "test": valid, "parameters": 10, "fit_seconds": 1.0,
            "latency_ms": 0.1, "peak_mb": 500, "curves": {"image": {"noise": image_curve}}}


def test_summarise_means_and_spread():
    summary = summarise([_run("a", 0, 0.8, [0.8] * 6), _run("a", 1, 0.9, [0.9] * 6)])
    assert summary["a"]["valid"] == pytest.approx((0.85, 0.05))
    assert summary["a"]["relative"] == pytest.approx((0.85, 0.05))  # flat curves: area = the clean score
    assert "effective" not in summary["a"]  # no late-fusion reference among the runs


def test_summarise_effective_robustness_against_late_fusion():
    late = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
    flatter = [0.9, 0.85, 0.8, 0.75, 0.7, 0.65]  # loses 0.05 per level where late loses 0.1
    summary = summarise([_run("fusion late", 0, 1.0, late), _run("image only", 0, 0.9, flatter)])
    assert summary["fusion late"]["effective"][0] == pytest.approx(0.0)
    assert summary["image only"]["effective"][0] == pytest.approx(sum(0.05 * k for k in range(6)))


def test_sweep_command(table_dir, tmp_path):
    mmfuse = str(Path(sys.executable).with_name("mmfuse"))
    result = subprocess.run(
        [mmfuse, "sweep", str(table_dir / "train.csv"), "--label", "y", "--test", str(table_dir / "test.csv"),
         "--valid", str(table_dir / "valid.csv"), "--fusions", "concat,late", "--seeds", "0", "--preset", "fast",
         "--max-epochs", "2", "--ignore", "id", "--members", "ngram_linear,embedding_linear",
         "--out", str(tmp_path / "sweep")],
        capture_output=True, text=True, env={"COLUMNS": "200", "PATH": str(Path(sys.executable).parent)})
    assert result.returncode == 0, result.stderr
    for name in ("image only", "tabular only", "text only", "fusion concat", "fusion late", "member ngram_linear",
                 "portfolio"):
        assert name in result.stdout
    # the fast preset's text encoder is not a frozen backbone: no embeddings for that member, said in one line
    assert "member embedding_linear seed 0: skipped (no portfolio member could be fitted" in result.stdout
    assert "winner:" in result.stdout and (tmp_path / "sweep" / "best" / "model.safetensors").is_file()
    assert len(list((tmp_path / "sweep" / "runs").iterdir())) == 7
    assert "eff. robustness" in result.stdout
    results = json.loads((tmp_path / "sweep" / "results.json").read_text())
    assert {r["name"] for r in results["runs"]} >= {"image only", "fusion late"}
    assert set(results["runs"][0]["curves"]) == {"image"}  # the image-only run is corrupted on its one input
