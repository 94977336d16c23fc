"""How much each column of a table matters to a fitted model: the drop in its primary metric when the column is
permuted (or masked), over the whole model, portfolio included (``Predictor.importance``, ``evaluate --importance``).

Permutation importance (Breiman 2001; scikit-learn's ``permutation_importance``, AutoGluon's
``feature_importance``): the table is transformed once; for each column and repeat, its values are shuffled between
the rows and the model scores the table again. A column that is its own model input (text, image, audio, sequence)
has its stored rows shuffled; a column that shares an input (numbers and categories share ``tabular``) is shuffled in
the table and that input alone is transformed again. ``mask`` instead removes the column: an own input is marked
absent (as ``--robustness`` does), a shared one is emptied (as a missing value). The drop is in the metric's own
units, positive when the column helps (for RMSE: how much it grows). On fewer than ``MIN_ROWS`` labelled rows the
figures are mostly noise (one row permutes to itself: every drop is 0): a warning says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..core.processor import Progress
from ..data.dataset import EncodedSplit
from ..data.streaming import take_rows
from ..data.table import read_table
from .base import BaseEstimator

METHODS = ("permute", "mask")
MIN_ROWS = 30  # labelled rows below which importance is noise (warned)
log = logging.getLogger("mmfuse")


@dataclass
class ColumnImportance:
    metric: str
    maximize: bool                       # the metric is better higher (the drop) or lower (RMSE: the rise)
    score: float                         # every column as given
    method: str                          # permute | mask
    drops: dict[str, list[float]]        # column -> drop of the metric per repeat (one for mask)
    modality: dict[str, str]             # column -> its modality
    input: dict[str, str]                # column -> the model input it feeds

    @property
    def change(self) -> str:
        """What the importance measures, in words: "drop in accuracy", "rise in rmse"."""
        return f"{'drop' if self.maximize else 'rise'} in {self.metric}"

    def frame(self) -> pd.DataFrame:
        """One row per column, most important first: importance (mean drop), stddev, n (repeats), modality, input."""
        rows = [{"column": c, "importance": float(np.mean(d)), "stddev": float(np.std(d, ddof=1)) if len(d) > 1
                 else 0.0, "n": len(d), "modality": self.modality[c], "input": self.input[c]}
                for c, d in self.drops.items()]
        return pd.DataFrame(rows).set_index("column").sort_values("importance", ascending=False)

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "measures": self.change, "score": self.score, "method": self.method,
                "columns": self.frame().reset_index().to_dict(orient="records")}


def column_importance(predictor: BaseEstimator, data: Any, method: str = "permute", repeats: int = 5,
                      seed: int = 0, progress: Progress | None = None) -> ColumnImportance:
    """Importance of every input column of a fitted ``predictor`` on a labelled table; ``progress`` receives
    ``("importance passes", done, total)`` after each pass over the table."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    table = read_table(data, "importance")
    frame, split = predictor.prepare(table, "importance", labelled=True)
    frame = frame.loc[split.rows]  # the rows the split kept, in its order
    if len(frame) < MIN_ROWS:
        log.warning(f"importance on {len(frame)} labelled row{'s' if len(frame) != 1 else ''}: fewer than {MIN_ROWS}, "
                    "so the figures are mostly noise (give it more rows)")
    target = predictor.targets(frame, split)
    task = predictor.task_
    sign = 1.0 if task.maximize else -1.0
    inputs = {column: plan.name for plan in predictor.plan_.values() for column in plan.columns}
    columns = [c.name for c in predictor.columns_ if c.name in inputs]
    repeats = 1 if method == "mask" else repeats
    total, done = 1 + len(columns) * repeats, [0]

    def score(changed: EncodedSplit, absent: frozenset[str] = frozenset()) -> float:
        done[0] += 1
        if progress:
            progress("importance passes", done[0], total)
        return task.score(target, predictor.predict_outputs(changed, absent=absent))

    base, rng = score(split), np.random.default_rng(seed)
    drops = {column: [sign * (base - score(*changed(predictor, split, frame, table.root, column, inputs[column],
                                                          method, rng.permutation(len(frame)))))
                      for _ in range(repeats)] for column in columns}
    return ColumnImportance(task.primary_metric, task.maximize, base, method, drops,
                            {c.name: c.modality for c in predictor.columns_}, inputs)


def changed(predictor: BaseEstimator, split: EncodedSplit, frame: pd.DataFrame, root: Path, column: str, name: str,
            method: str, order: np.ndarray) -> tuple[EncodedSplit, frozenset[str]]:
    """The split with ``column`` (of input ``name``) shuffled by ``order`` or masked, and the inputs to treat as
    absent: a column that shares its input is changed in the table and its input transformed again."""
    if len(predictor.plan_[name].columns) > 1:
        values = np.full(len(frame), np.nan, dtype=object) if method == "mask" else frame[column].to_numpy()[order]
        return retransformed(predictor, split, name, frame.assign(**{column: values}), root), frozenset()
    if method == "mask":
        return split, frozenset({name})
    index = torch.as_tensor(order)
    return replace(split, stored={**split.stored, name: take_rows(split.stored[name], index)},
                   present={**split.present, name: split.present[name][index]}), frozenset()


def retransformed(predictor: BaseEstimator, split: EncodedSplit, name: str, frame: pd.DataFrame,
                  root: Path) -> EncodedSplit:
    """``split`` with input ``name`` transformed again from ``frame`` (the split's rows, a column changed)."""
    processor = predictor.pipeline_.processors[name]
    out = processor.transform(processor.input_values(frame), root)
    return replace(split, stored={**split.stored, name: out.values}, present={**split.present, name: out.present})
