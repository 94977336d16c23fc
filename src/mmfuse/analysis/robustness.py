"""How much each input matters and how gracefully a model degrades (``mmfuse evaluate MODEL DATA --robustness``).

- Removal: the score with each input marked absent, drop-one contributions, and exact Shapley values over the
  inputs (when there are at most 4), with v(S) = the score when only the inputs in S are present.
- Corruption curves: the score as each input is corrupted more (levels 0..1), with the corruptions its modality
  plugin offers (``Processor.corruptions``): images noise / blur / occlusion; audio and sequences noise / time
  masking; text typos (tokens -> unknown) / word drop; tabular noise / missing; frozen pretrained encoders (whose
  inputs are cached features) feature noise.
- Sets (several values per cell): the score with 1, 2, ... K of each row's elements kept, drawn at random.
- MultiBench's robustness measures (Liang et al., 2021): relative robustness = area under the score-vs-level
  curve; effective robustness = the curve's excess over a reference model's curve shifted to the same clean score.

The score is the task's primary metric, oriented so higher is better (R2 for regression).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..core.processor import Progress
from ..core.set_processor import keep_elements
from ..core.shapley import shapley_values
from ..estimators import Predictor

LEVELS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


# --- measures --------------------------------------------------------------------------------------------------
def relative_robustness(scores: list[float], levels: tuple[float, ...] = LEVELS) -> float:
    """MultiBench's relative robustness: area under the score-vs-level curve (levels spanning 0..1)."""
    return float(np.trapezoid(scores, levels))


def effective_robustness(scores: list[float], reference: list[float]) -> float:
    """MultiBench's effective robustness: sum of the curve's excess over ``reference`` moved to the same clean score."""
    f, ref = np.asarray(scores), np.asarray(reference)
    return float(np.sum(f - (ref + f[0] - ref[0])))


@dataclass
class RobustnessReport:
    metric: str
    score: float                                    # everything present, nothing corrupted
    nothing: float                                  # every input absent: what the model knows a priori
    without: dict[str, float]                       # input -> score with that input absent
    shapley: dict[str, float] | None                # input -> Shapley value (at most 4 inputs)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # input -> corruption -> scores
    levels: tuple[float, ...] = LEVELS                                         # corruption levels of the curves
    elements: dict[str, list[float]] = field(default_factory=dict)  # set input -> score with 1, 2, ... K elements

    def relative(self) -> dict[str, dict[str, float]]:
        return {i: {c: relative_robustness(s) for c, s in cs.items()} for i, cs in self.curves.items()}

    def to_dict(self) -> dict:
        return {"metric": self.metric, "levels": list(self.levels), "score": self.score, "nothing": self.nothing,
                "without": self.without,
                "drop_one": {i: self.score - s for i, s in self.without.items()}, "shapley": self.shapley,
                "curves": self.curves, "relative_robustness": self.relative(), "elements_kept": self.elements}


def robustness(predictor: Predictor, data, max_shapley_inputs: int = 4, seed: int = 0,
               progress: Progress | None = None, curves: bool = True) -> RobustnessReport:
    """Removal, Shapley and (with ``curves``) corruption analysis of a fitted ``Predictor`` on a labelled table;
    ``progress`` receives ``("robustness passes", done, total)`` after each pass over the table."""
    frame, split = predictor.prepare(data, "robustness", labelled=True)
    target = predictor.targets(frame, split)
    task = predictor.task_
    metric = task.report_metric
    inputs = predictor.inputs_
    corruptions = predictor.corruptions() if curves else {name: {} for name in inputs}
    with_shapley = len(inputs) <= max_shapley_inputs
    total = (2 ** len(inputs) if with_shapley else len(inputs) + 2) + len(LEVELS) * sum(map(len, corruptions.values()))
    total += sum(predictor.pipeline_.set_sizes().values()) if curves else 0
    done = [0]

    def scored(outputs: np.ndarray) -> float:
        done[0] += 1
        if progress:
            progress("robustness passes", done[0], total)
        return task.metrics(target, outputs, names=(metric,)).get(metric, float("nan"))

    cache: dict[frozenset[str], float] = {}

    def score_with(present: frozenset[str]) -> float:
        if present not in cache:
            cache[present] = scored(predictor.predict_outputs(split, absent=frozenset(inputs) - present))
        return cache[present]

    everything = frozenset(inputs)
    report = RobustnessReport(metric, score_with(everything), score_with(frozenset()),
                              {i: score_with(everything - {i}) for i in inputs},
                              shapley_values(score_with, inputs) if with_shapley else None)
    for name in inputs:
        report.curves[name] = {}
        for corruption, fn in corruptions[name].items():
            scores = []
            for level in LEVELS:
                gen = torch.Generator().manual_seed(seed)
                transform = (lambda x, fn=fn, level=level, gen=gen, name=name:
                             {**x, name: fn(x[name], level, gen)})
                scores.append(scored(predictor.predict_outputs(split, transform=transform)))
            report.curves[name][corruption] = scores
    for name, k in predictor.pipeline_.set_sizes().items() if curves else ():
        report.elements[name] = []
        for count in range(1, k + 1):
            gen = torch.Generator().manual_seed(seed)
            transform = (lambda x, count=count, gen=gen, name=name: {**x, name: keep_elements(x[name], count, gen)})
            report.elements[name].append(scored(predictor.predict_outputs(split, transform=transform)))
    return report

