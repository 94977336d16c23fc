"""A ``Predictor``'s row weights: ``fit(sample_weight=...)`` (one number a row of the training table, or the name
of a column that holds them: ``--sample-weight COLUMN``) times ``class_weight`` (``"balanced"``: each class weighs as
much in all as any other, n / (classes x its rows), from the training rows; or class -> weight). They reach every
member's loss, the choices made on validation rows and the validation scores; a held-out validation row keeps its
weight, and a ``valid`` table without the column weighs each row 1 (said in the log). A class with fewer training
rows than the folds of the out-of-fold copies, or none among the validation rows, is warned of.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data.dataset import TableDataset
from ..errors import ConfigError, DataError
from .splits import FitSplits

WEIGHT_COLUMN = "__sample_weight__"  # where an array of weights travels with its rows through the hold-out
FOLDS = 5                            # ``portfolio.learner.folds_of``'s, which the out-of-fold copies use


class WeightedRows:
    """Row weights for an estimator that learns its ``label`` column (mixed into ``Predictor`` before
    ``LabelColumn``)."""

    _sample_weight: Any = None        # fit's argument, while fit runs
    _weight_column: str | None = None

    def fit(self, train: Any, y: Any = None, *, sample_weight: Any = None, **kwargs: Any) -> Any:
        """``BaseEstimator.fit``, with ``sample_weight``: each training row's weight (N,) (non-negative numbers,
        in the table's row order), or the name of the column that holds them (not read as a feature)."""
        self._sample_weight = sample_weight
        try:
            return super().fit(train, y, **kwargs)
        finally:
            self._sample_weight = None

    def _usable_rows(self, frame: pd.DataFrame, split: str) -> tuple[pd.DataFrame, list[int]]:
        given = self._sample_weight
        if split == "train":
            self._weight_column = given if given is None or isinstance(given, str) else WEIGHT_COLUMN
            if isinstance(given, str) and given not in frame.columns:
                raise DataError(f"sample_weight column {given!r} not found in train; columns are: "
                                f"{', '.join(map(str, frame.columns))}")
            if self._weight_column == WEIGHT_COLUMN:
                values = np.asarray(given, dtype=object)
                if values.ndim != 1 or len(values) != len(frame):
                    raise DataError(f"sample_weight holds {values.shape} weights for a training table of {len(frame)} "
                                    "rows (one a row, in order)")
                frame = frame.assign(**{WEIGHT_COLUMN: values})
        if split in ("train", "valid") and self._weight_column in frame:
            _check_weights(frame[self._weight_column], split)
        return super()._usable_rows(frame, split)

    def _resume_parts(self, splits: FitSplits) -> dict[str, Any]:
        return {**super()._resume_parts(splits), "the row weights and the metric": [
            self._weight_column, repr(self.class_weight), self.eval_metric]}  # the weights: in the rows' digest

    def _detect(self, frame: pd.DataFrame, root: Any) -> Any:
        return super()._detect(frame.drop(columns=[c for c in [self._weight_column] if c in frame]), root)

    def _preprocess(self, splits: FitSplits, clock: Any) -> tuple[TableDataset, TableDataset, dict]:
        train_set, valid_set, features = super()._preprocess(splits, clock)
        self._warn_of_small_classes(splits)
        classes = self._class_weights(splits.train)
        for frame, dataset, split in ((splits.train, train_set, "train"), (splits.valid, valid_set, "valid")):
            dataset.weight = self._row_weights(frame.loc[dataset.split.rows], classes, split)
        return train_set, valid_set, features

    def _class_weights(self, train: pd.DataFrame) -> dict[Any, float] | None:
        """Class -> weight (None: no ``class_weight``)."""
        if self.class_weight is None:
            return None
        if not self.task_.one_class_per_row:
            raise ConfigError(f"class_weight applies to binary and multiclass tasks, not to {self.task_.name}")
        labels = self.task_.encode(train[self.label]).numpy()
        if self.class_weight == "balanced":
            counts = np.bincount(labels, minlength=len(self.task_.classes))
            return {c: len(labels) / (len(counts) * n) if n else 0.0 for c, n in zip(self.task_.classes, counts)}
        if not isinstance(self.class_weight, dict):
            raise ConfigError(f"class_weight must be 'balanced' or a dict class -> weight, not {self.class_weight!r}")
        unknown = [c for c in self.class_weight if c not in self.task_.classes]
        if unknown:
            raise ConfigError(f"class_weight names {unknown[0]!r}, not a class of label {self.label!r}; classes are: "
                              f"{', '.join(map(str, self.task_.classes))}")
        return {c: float(self.class_weight.get(c, 1.0)) for c in self.task_.classes}

    def _row_weights(self, frame: pd.DataFrame, classes: dict[Any, float] | None, split: str) -> torch.Tensor | None:
        """(N,) float32 weights of a split's stored rows (None: 1 each)."""
        weight = np.ones(len(frame))
        column = self._weight_column
        if column is not None and column not in frame:
            self._log(f"{split}: no sample_weight column {column!r}: each row weighs 1")
        elif column is not None:
            weight = pd.to_numeric(frame[column]).to_numpy(dtype=float)  # checked as read (``_check_weights``)
        if classes is not None:
            weight = weight * self.task_.encode(frame[self.label]).numpy().choose(list(classes.values()))
        if column is None and classes is None:
            return None
        if weight.sum() <= 0:
            raise DataError(f"{split}: every row weighs 0")
        return torch.tensor(weight, dtype=torch.float32)

    def _warn_of_small_classes(self, splits: FitSplits) -> None:
        if not self.task_.one_class_per_row:
            return
        train, valid = (split[self.label].astype(str).value_counts() for split in (splits.train, splits.valid))
        for name, count in train.items():
            if count < FOLDS or name not in valid:
                self._log(f"class {name!r} has {count} training and {valid.get(name, 0)} validation rows: fewer than "
                          f"the {FOLDS} folds of the out-of-fold copies, or none to validate on; its scores are "
                          "unreliable (class_weight='balanced' weighs it up)", logging.WARNING)


def _check_weights(values: pd.Series, split: str) -> None:
    """A one-line error naming the first row whose weight is not a finite number at or above 0."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() | ~np.isfinite(numbers) | (numbers < 0)
    if bad.any():
        row = values.index[bad.to_numpy()][0]
        raw = values.loc[row]
        raise DataError(f"{split} row {row}: sample weight {raw.item() if hasattr(raw, 'item') else raw!r} is not a "
                        "finite number at or above 0")
