"""A ``Predictor``'s label column: the rows that have a label (those without are left out and counted), labels
given as ``y`` instead, the task inferred from them (or set), the hold-out stratified by class, the columns
detected beside it, and the encoded targets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..core.columns import ColumnInfo
from ..data.dataset import EncodedSplit
from ..data.detect import detect_columns
from ..data.table import Table
from ..errors import DataError
from ..tasks import Task, create_task, explain_task


class LabelColumn:
    """What an estimator that learns its ``label`` column does with it (mixed into ``Predictor``), and the label's
    settings a saved model keeps."""

    def set_params(self, **params: Any) -> Any:
        """scikit-learn's ``set_params``; a new ``threshold`` applies to a fitted model's next predictions too."""
        super().set_params(**params)
        if "threshold" in params and hasattr(self, "task_"):
            self.task_.threshold = self.threshold
        return self

    def _bundle_fields(self) -> dict[str, Any]:
        return {"label": self.label, "label_sep": self.label_sep}

    def _resume_parts(self, splits: Any) -> dict[str, Any]:
        return {**super()._resume_parts(splits), "the ignored columns": sorted(self.ignore or [])}

    @classmethod
    def _from_bundle_fields(cls, config: dict[str, Any], **kwargs: Any) -> Any:
        return cls(label=config["label"], label_sep=config.get("label_sep"),
                   threshold=config["task"].get("threshold", 0.5), eval_metric=config["task"].get("metric"), **kwargs)

    def _usable_rows(self, frame: pd.DataFrame, split: str) -> tuple[pd.DataFrame, list[int]]:
        """Rows with a label; the ids of those without."""
        if self.label not in frame.columns:
            raise DataError(f"{split}: label column {self.label!r} not found; columns are: "
                            f"{', '.join(map(str, frame.columns))}")
        labels = frame[self.label]
        missing = labels.isna() | labels.astype(str).str.strip().eq("")
        if missing.all():
            raise DataError(f"{split}: label column {self.label!r} is empty in every row")
        return frame[~missing], [int(i) for i in frame.index[missing]]

    def _with_labels(self, table: Table, y: Any) -> Table:
        if y is None:
            return table
        if isinstance(y, (str, Path, pd.DataFrame, Table)):
            raise TypeError("fit's second argument is y, the labels; pass a validation table as valid=...")
        labels = np.asarray(y)
        if labels.ndim != 1 or len(labels) != len(table.frame):
            raise DataError(f"y holds {labels.shape} labels for a table of {len(table.frame)} rows")
        return replace(table, frame=table.frame.assign(**{self.label: labels}))

    def _make_task(self, frame: pd.DataFrame) -> Task:
        if self.task == "auto":
            name, why = explain_task(frame[self.label], self.label_sep)
            self._log(f"task: {name}, inferred from label {self.label!r} ({why}; --task sets another)")
        else:
            name = self.task
            self._log(f"task: {name} (as set)")
        task = create_task(name, self.label, self.label_sep, self.threshold, self.eval_metric)
        if not task.own_metric:
            self._log(f"eval_metric: {task.primary_metric} ({'higher' if task.maximize else 'lower'} is better) "
                      f"picks every setting on validation, in place of {type(task).primary_metric}")
        return task

    def _strata(self, frame: pd.DataFrame) -> np.ndarray | None:
        return frame[self.label].astype(str).to_numpy() if self.task_.one_class_per_row else None

    def _fit_task(self, frame: pd.DataFrame) -> None:
        self.task_.fit(frame[self.label])

    def _detect(self, frame: pd.DataFrame, root: Path) -> list[ColumnInfo]:
        return detect_columns(frame, self.label, root, self.column_types, self.ignore, self.set_sep)

    def targets(self, frame: pd.DataFrame, split: EncodedSplit) -> torch.Tensor:
        """The encoded labels of a prepared split's rows (``frame`` as ``prepare`` returned it)."""
        return self.task_.encode(frame[self.label].loc[split.rows])
