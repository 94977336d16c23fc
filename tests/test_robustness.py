"""Robustness analysis: corruptions, MultiBench measures, exact Shapley values, the report on a fitted model."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmfuse import Predictor
from mmfuse.analysis.robustness import LEVELS, effective_robustness, relative_robustness, robustness
from mmfuse.core.shapley import shapley_values
from mmfuse.core.frames import frames_time_mask
from mmfuse.modalities.image.corruptions import image_blur, image_noise, image_occlusion
from mmfuse.modalities.text.corruptions import text_typos, text_word_drop


def gen():
    return torch.Generator().manual_seed(0)


def test_text_corruptions():
    ids = torch.tensor([[5, 6, 7, 8, 0, 0]])
    assert torch.equal(text_word_drop(ids, 0.0, gen()), ids) and torch.equal(text_typos(ids, 0.0, gen()), ids)
    dropped = text_word_drop(ids, 0.5, gen())
    kept = dropped[dropped != 0].tolist()
    assert kept == [t for t in [5, 6, 7, 8] if t in kept], "order kept"
    assert (dropped[0, len(kept):] == 0).all(), "survivors close up at the front"
    assert text_word_drop(ids, 1.0, gen()).eq(0).all()
    assert text_typos(ids, 1.0, gen()).tolist() == [[1, 1, 1, 1, 0, 0]]


def test_image_and_frame_corruptions_keep_shape_and_level_zero_is_identity():
    x = torch.randn(3, 1, 12, 12)
    for fn in (image_noise, image_blur, image_occlusion):
        assert torch.equal(fn(x, 0.0, gen()), x) and fn(x, 0.6, gen()).shape == x.shape
    assert image_occlusion(x, 1.0, gen()).eq(0).all()
    frames = torch.ones(2, 10, 4)
    frames[1, 5:] = 0
    masked = frames_time_mask(frames, 0.4, gen())
    assert (masked[..., :-1] == 0).all(-1).sum(1).tolist() == [4, 5 + 2]
    assert torch.equal(masked[..., -1], frames[..., -1])


def test_multibench_measures():
    assert relative_robustness([1.0] * 6) == pytest.approx(1.0)
    assert relative_robustness([1.0, 0.8, 0.6, 0.4, 0.2, 0.0]) == pytest.approx(0.5)
    assert effective_robustness([0.9, 0.8, 0.7], [0.8, 0.6, 0.4]) == pytest.approx(0.0 + 0.1 + 0.2)


def test_shapley_is_exact_and_efficient():
    def value(subset):  # additive part plus an a*b interaction split evenly
        return 0.1 * ("a" in subset) + 0.3 * ("b" in subset) + 0.2 * ({"a", "b"} <= subset)
    phi = shapley_values(value, ["a", "b", "c"])
    assert phi == pytest.approx({"a": 0.2, "b": 0.4, "c": 0.0})
    assert sum(phi.values()) == pytest.approx(value(frozenset("abc")) - value(frozenset()))


def test_report_on_a_fitted_model(table_dir, tmp_path):
    predictor = Predictor(label="y", preset="fast", max_epochs=6, threads=2, progress=False, verbose=False,
                          ignore=["id"]).fit(table_dir / "train.csv", valid=table_dir / "valid.csv")
    passes = []
    report = robustness(predictor, table_dir / "test.csv", progress=lambda *call: passes.append(call))
    curves = len(LEVELS) * sum(len(c) for c in predictor.corruptions().values())
    assert passes == [("robustness passes", k, 2 ** 3 + curves) for k in range(1, 2 ** 3 + curves + 1)]
    assert report.metric == "accuracy"
    assert report.score == pytest.approx(predictor.evaluate(table_dir / "test.csv")["accuracy"])
    assert set(report.without) == {"image", "tabular", "text"} and report.without["image"] < report.score
    assert sum(report.shapley.values()) == pytest.approx(report.score - report.nothing)
    assert set(report.curves["image"]) == {"noise", "blur", "occlusion"}
    for by_corruption in report.curves.values():
        for scores in by_corruption.values():
            assert len(scores) == len(LEVELS) and scores[0] == pytest.approx(report.score)
    assert report.curves["image"]["occlusion"][-1] < report.score

    predictor.save(tmp_path / "m")
    mmfuse = str(Path(sys.executable).with_name("mmfuse"))
    out = subprocess.run([mmfuse, "evaluate", str(tmp_path / "m"), str(table_dir / "test.csv"), "--robustness",
                          "--json", "--robustness-plot", str(tmp_path / "r.png")], capture_output=True, text=True,
                         check=True).stdout
    data = json.loads(out)["robustness"]
    assert set(data) >= {"without", "drop_one", "shapley", "curves", "relative_robustness"}
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
