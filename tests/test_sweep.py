"""The sweep: unimodal baselines + fusion methods, each run in its own process, winner picked on validation. The
command itself runs in the README test (``test_readme.py``: its tour's sweep, checked there)."""

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
