"""What each input, and each column of a shared input, contributed to each row's prediction, from removals only
(``predict --explain``, ``Predictor.predict_frame(explain=True)``, the serving API's ``explain``).

The tracked value of a row is the probability of its predicted class (multilabel: of its most probable label;
regression: the predicted value). ``removal[i]`` = value with every input - value with input ``i`` removed (M + 1
forward passes); ``shapley[i]`` = the exact Shapley value of input ``i`` with v(S) = the value when only the inputs in
S are present (2^M passes, for at most ``max_shapley_inputs`` inputs); ``columns[c]``, for each column ``c`` of an
input that several columns share (numbers and categories: ``tabular``) = value with every column - value with ``c``
empty (one pass per column). An input absent from a row contributes 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.shapley import shapley_values
from ..data.dataset import EncodedSplit
from .base import BaseEstimator
from .importance import retransformed


@dataclass
class RowContributions:
    outputs: np.ndarray                          # (N, K) task outputs with every input
    tracked: np.ndarray                          # (N,) the output column each row's value is read from
    removal: dict[str, np.ndarray]               # input -> (N,) change when that input is removed
    shapley: dict[str, np.ndarray] | None        # input -> (N,) Shapley values, or None (too many inputs)
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # column of a shared input -> (N,) change

    def explains(self, classes: list | None) -> list[str]:
        """Per row, what its contributions move: "probability of <class>" or "predicted value"."""
        return ["predicted value" if classes is None else f"probability of {classes[k]!s}" for k in self.tracked]


def row_contributions(predictor: BaseEstimator, split: EncodedSplit, max_shapley_inputs: int = 4,
                      frame: pd.DataFrame | None = None, root: Path | None = None) -> RowContributions:
    """Per-row removal and Shapley contributions of every input for a prepared split; with the table ``frame``
    ``prepare`` returned (and its folder ``root``), also each shared input's columns'."""
    inputs = predictor.inputs_
    everything = frozenset(inputs)
    outputs = predictor.predict_outputs(split)
    tracked = outputs.argmax(1) if predictor.task_.has_probabilities else np.zeros(len(outputs), dtype=int)
    rows = np.arange(len(outputs))
    cache: dict[frozenset[str], np.ndarray] = {everything: outputs[rows, tracked]}

    def value(present: frozenset[str]) -> np.ndarray:  # (N,)
        if present not in cache:
            cache[present] = predictor.predict_outputs(split, absent=everything - present)[rows, tracked]
        return cache[present]

    removal = {i: value(everything) - value(everything - {i}) for i in inputs}
    shapley = shapley_values(value, inputs) if len(inputs) <= max_shapley_inputs else None
    columns = {}
    if frame is not None:
        frame = frame.loc[split.rows]
        for plan in (p for p in predictor.plan_.values() if len(p.columns) > 1):
            for column in plan.columns:
                emptied = retransformed(predictor, split, plan.name, frame.assign(**{column: np.nan}),
                                        root or Path.cwd())
                columns[column] = cache[everything] - predictor.predict_outputs(emptied)[rows, tracked]
    return RowContributions(outputs, tracked, removal, shapley, columns)
