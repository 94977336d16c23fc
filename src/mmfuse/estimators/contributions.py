"""What each input contributed to each row's prediction (the serving API's ``explain``), from removals only.

The tracked value of a row is the probability of its predicted class (multilabel: of its most probable label;
regression: the predicted value). ``removal[i]`` = value with every input - value with input ``i`` removed (M + 1
forward passes); ``shapley[i]`` = the exact Shapley value of input ``i`` with v(S) = the value when only the inputs in
S are present (2^M passes, for at most ``max_shapley_inputs`` inputs). An input absent from a row contributes 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.dataset import EncodedSplit
from ..estimators import Predictor
from .robustness import shapley_values


@dataclass
class RowContributions:
    outputs: np.ndarray                          # (N, K) task outputs with every input
    tracked: np.ndarray                          # (N,) the output column each row's value is read from
    removal: dict[str, np.ndarray]               # input -> (N,) change when that input is removed
    shapley: dict[str, np.ndarray] | None        # input -> (N,) Shapley values, or None (too many inputs)


def row_contributions(predictor: Predictor, split: EncodedSplit, max_shapley_inputs: int = 4) -> RowContributions:
    """Per-row removal and Shapley contributions of every input for a prepared split."""
    inputs = predictor.inputs_
    everything = frozenset(inputs)
    outputs = predictor.predict_outputs(split)
    regression = predictor.task_.name == "regression"
    tracked = np.zeros(len(outputs), dtype=int) if regression else outputs.argmax(1)
    rows = np.arange(len(outputs))
    cache: dict[frozenset[str], np.ndarray] = {everything: outputs[rows, tracked]}

    def value(present: frozenset[str]) -> np.ndarray:  # (N,)
        if present not in cache:
            cache[present] = predictor.predict_outputs(split, absent=everything - present)[rows, tracked]
        return cache[present]

    removal = {i: value(everything) - value(everything - {i}) for i in inputs}
    shapley = shapley_values(value, inputs) if len(inputs) <= max_shapley_inputs else None
    return RowContributions(outputs, tracked, removal, shapley)
