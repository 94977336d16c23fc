"""How much each input matters and how gracefully a model degrades (``mmfuse evaluate MODEL DATA --robustness``).

- Removal: the score with each input marked absent, drop-one contributions, and exact Shapley values over the
  inputs (when there are at most 4), with v(S) = the score when only the inputs in S are present.
- Corruption curves: the score as each input is corrupted more (levels 0..1): images noise / blur / occlusion;
  audio and sequences noise / time masking; text typos (tokens -> unknown) / word drop; tabular noise / missing;
  frozen pretrained encoders (whose inputs are cached features) feature noise.
- MultiBench's robustness measures (Liang et al., 2021): relative robustness = area under the score-vs-level
  curve; effective robustness = the curve's excess over a reference model's curve shifted to the same clean score.

The score is the task's primary metric, oriented so higher is better (R2 for regression).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

LEVELS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
Corruption = Callable[[Tensor, float, torch.Generator], Tensor]


# --- corruptions of prepared model inputs (level 0 = unchanged) --------------------------------------------------
def image_noise(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """(B, C, S, S) normalised images + Gaussian noise of 2 * level standard deviations."""
    return x + 2 * level * torch.randn(x.shape, generator=gen)


def image_blur(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """Box blur of width 1 + 2 * round(3 * level)."""
    k = 1 + 2 * round(3 * level)
    return F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False) if k > 1 else x


def image_occlusion(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """A square of side level * S at a random place set to the mean (0 after normalisation)."""
    size = x.shape[-1]
    side = round(level * size)
    out = x.clone()
    for i, (top, left) in enumerate(torch.randint(0, size - side + 1, (len(x), 2), generator=gen).tolist()):
        out[i, :, top:top + side, left:left + side] = 0
    return out


def text_typos(ids: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """(B, L) token ids: each real token becomes [UNK] (id 1) with probability ``level``."""
    hit = (torch.rand(ids.shape, generator=gen) < level) & (ids != 0)
    return ids.masked_fill(hit, 1)


def text_word_drop(ids: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """Each real token is removed with probability ``level``; the rest close up, order kept."""
    keep = (ids != 0) & (torch.rand(ids.shape, generator=gen) >= level)
    order = torch.argsort((~keep).int(), dim=1, stable=True)
    return torch.gather(ids * keep, 1, order)


def frames_noise(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """(B, T, F + 1) standardised frames + Gaussian noise of 2 * level, on real steps only."""
    noise = 2 * level * torch.randn(x[..., :-1].shape, generator=gen) * x[..., -1:]
    return torch.cat([x[..., :-1] + noise, x[..., -1:]], dim=-1)


def frames_time_mask(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """A span of ``level`` of each row's real steps blanked (features 0 = the mean; the steps stay)."""
    out = x.clone()
    for i, steps in enumerate(x[..., -1].sum(1).long().tolist()):
        span = round(level * steps)
        start = int(torch.randint(0, steps - span + 1, (1,), generator=gen)) if steps else 0
        out[i, start:start + span, :-1] = 0
    return out


def feature_noise(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """(B, F) cached features of a frozen pretrained encoder + Gaussian noise of 2 * level per-feature std."""
    return x + 2 * level * x.std(0, keepdim=True) * torch.randn(x.shape, generator=gen)


@dataclass
class TabularCorruptions:
    """Noise on the standardised numeric values; "missing" blanks values as a missing cell would."""

    num_numeric: int          # value + indicator columns (2 per numeric column)
    imputed: list[float]      # each numeric column's standardised median

    def noise(self, x: Tensor, level: float, gen: torch.Generator) -> Tensor:
        out = x.clone()
        values = out[:, 0:self.num_numeric:2]
        out[:, 0:self.num_numeric:2] = values + 2 * level * torch.randn(values.shape, generator=gen)
        return out

    def missing(self, x: Tensor, level: float, gen: torch.Generator) -> Tensor:
        out = x.clone()
        hit = torch.rand(x.shape, generator=gen) < level  # (B, width)
        for j, value in enumerate(self.imputed):
            rows = hit[:, 2 * j]
            out[rows, 2 * j], out[rows, 2 * j + 1] = value, 1.0
        out[:, self.num_numeric:] = out[:, self.num_numeric:].masked_fill(hit[:, self.num_numeric:], 0.0)
        return out


def corruptions_for(processor) -> dict[str, Corruption]:
    """The corruptions that apply to one input, by name."""
    kind = processor.modality
    if getattr(processor, "finetune", True) is False:  # a frozen pretrained encoder's input is its cached features
        return {"feature noise": feature_noise}
    if processor.kind == "pretrained_text":  # fine-tuned: its own tokenizer's ids, no generic text corruption
        return {}
    if kind == "image":
        return {"noise": image_noise, "blur": image_blur, "occlusion": image_occlusion}
    if kind == "text":
        return {"typos": text_typos, "word drop": text_word_drop}
    if kind in ("audio", "sequence"):
        return {"noise": frames_noise, "time mask": frames_time_mask}
    imputed = [(m - mu) / s for m, mu, s in zip(processor.medians, processor.means, processor.stds)]
    tab = TabularCorruptions(2 * len(processor.numeric), imputed)
    return {"noise": tab.noise, "missing": tab.missing}


# --- measures --------------------------------------------------------------------------------------------------
def relative_robustness(scores: list[float], levels: tuple[float, ...] = LEVELS) -> float:
    """MultiBench's relative robustness: area under the score-vs-level curve (levels spanning 0..1)."""
    return float(np.trapezoid(scores, levels))


def effective_robustness(scores: list[float], reference: list[float]) -> float:
    """MultiBench's effective robustness: sum of the curve's excess over ``reference`` moved to the same clean score."""
    f, ref = np.asarray(scores), np.asarray(reference)
    return float(np.sum(f - (ref + f[0] - ref[0])))


def shapley_values(value: Callable[[frozenset[str]], float], players: list[str]) -> dict[str, float]:
    """Exact Shapley values: phi_i = sum over S without i of |S|! (n - |S| - 1)! / n! * (v(S + i) - v(S))."""
    n = len(players)
    phi = {}
    for p in players:
        rest = [q for q in players if q != p]
        total = 0.0
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for subset in itertools.combinations(rest, size):
                total += weight * (value(frozenset(subset) | {p}) - value(frozenset(subset)))
        phi[p] = total
    return phi


@dataclass
class RobustnessReport:
    metric: str
    score: float                                    # everything present, nothing corrupted
    nothing: float                                  # every input absent: what the model knows a priori
    without: dict[str, float]                       # input -> score with that input absent
    shapley: dict[str, float] | None                # input -> Shapley value (at most 4 inputs)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # input -> corruption -> scores

    def relative(self) -> dict[str, dict[str, float]]:
        return {i: {c: relative_robustness(s) for c, s in cs.items()} for i, cs in self.curves.items()}

    def to_dict(self) -> dict:
        return {"metric": self.metric, "levels": list(LEVELS), "score": self.score, "nothing": self.nothing,
                "without": self.without,
                "drop_one": {i: self.score - s for i, s in self.without.items()}, "shapley": self.shapley,
                "curves": self.curves, "relative_robustness": self.relative()}


def robustness(predictor, data, max_shapley_inputs: int = 4, seed: int = 0) -> RobustnessReport:
    """Removal, Shapley and corruption analysis of a fitted ``Predictor`` on a labelled table."""
    frame, split = predictor._prepare(data, "robustness", need_label=True)
    target = predictor.task_.encode(frame[predictor.label].loc[split.rows])
    task = predictor.task_
    metric = "r2" if task.name == "regression" else task.primary_metric
    inputs = sorted(predictor.processors_)
    cache: dict[frozenset[str], float] = {}

    def score_with(present: frozenset[str]) -> float:
        if present not in cache:
            outputs = predictor._outputs(split, absent=frozenset(inputs) - present)
            cache[present] = task.metrics(target, outputs)[metric]
        return cache[present]

    everything = frozenset(inputs)
    report = RobustnessReport(metric, score_with(everything), score_with(frozenset()),
                              {i: score_with(everything - {i}) for i in inputs},
                              shapley_values(score_with, inputs) if len(inputs) <= max_shapley_inputs else None)
    for name in inputs:
        report.curves[name] = {}
        for corruption, fn in corruptions_for(predictor.processors_[name]).items():
            scores = []
            for level in LEVELS:
                gen = torch.Generator().manual_seed(seed)
                transform = (lambda x, fn=fn, level=level, gen=gen, name=name:
                             {**x, name: fn(x[name], level, gen)})
                scores.append(task.metrics(target, predictor._outputs(split, transform=transform))[metric])
            report.curves[name][corruption] = scores
    return report
