"""Regression: one output trained on the standardised target, reported in the label's units."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn import metrics as skm
from torch import Tensor

from ..errors import DataError
from ..registry import TASKS
from .base import Task, evaluate


@TASKS.register("regression", labelled=True)
class RegressionTask(Task):
    """A number: one output trained on the standardised target with MSE, reported in the original units."""

    name, primary_metric, output_kind = "regression", "rmse", "value"
    metric_names = ("rmse", "mae", "r2")
    out_dim = 1
    report_metric = "r2"
    fitted = ("mean", "std")
    mean: float = 0.0
    std: float = 1.0

    def fit(self, labels: pd.Series) -> "RegressionTask":
        values = self._numbers(labels)
        self.mean, self.std = float(values.mean()), float(values.std()) or 1.0
        return self

    def _numbers(self, labels: pd.Series) -> np.ndarray:
        values = pd.to_numeric(labels, errors="coerce")
        if values.isna().any():
            row = values.index[values.isna()][0]
            raise DataError(f"row {row}: label {labels[row]!r} in column {self.label!r} is not a number (regression)")
        return values.to_numpy(dtype=float)

    def encode(self, labels: pd.Series) -> Tensor:
        return torch.tensor((self._numbers(labels) - self.mean) / self.std, dtype=torch.float32)

    def row_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(logits.squeeze(1), target, reduction="none")

    def output_tensor(self, logits: Tensor) -> Tensor:
        return logits.float() * self.std + self.mean  # (N, 1) in label units

    def metrics(self, target: Tensor, outputs: np.ndarray, weight: np.ndarray | None = None,
                names: Iterable[str] | None = None) -> dict[str, float]:
        y, pred, w = target.numpy() * self.std + self.mean, outputs[:, 0], weight
        return evaluate({"rmse": lambda: np.sqrt(skm.mean_squared_error(y, pred, sample_weight=w)),
                         "mae": lambda: skm.mean_absolute_error(y, pred, sample_weight=w),
                         "r2": lambda: skm.r2_score(y, pred, sample_weight=w) if len(y) > 1 else float("nan")}, names)

    def prediction_frame(self, outputs: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"prediction": outputs[:, 0]})
