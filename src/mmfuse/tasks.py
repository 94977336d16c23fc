"""Prediction tasks: each knows how to read its label column, its output width, loss, probabilities and metrics.

``infer_task`` picks one from the label column (overridable with ``--task``). Task state (class names, target
scaling) is JSON so a bundle can rebuild it.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn import metrics as skm
from torch import Tensor

from .errors import DataError


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _is_missing(value: Any) -> bool:
    if isinstance(value, (list, tuple, np.ndarray)):
        return False
    return value is None or (isinstance(value, float) and np.isnan(value)) or (isinstance(value, str) and not value.strip())


def parse_label_list(value: Any, sep: str | None) -> list[str]:
    """A multilabel cell -> label names: a list, a JSON list string, or a ``sep``-delimited string."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        try:
            return [str(v) for v in json.loads(text)]
        except json.JSONDecodeError:
            raise DataError(f"label cell {text!r} starts with '[' but is not a JSON list") from None
    if sep is None:
        return [text] if text else []
    return [part.strip() for part in text.split(sep) if part.strip()]


class Task:
    """Base class. ``fit`` learns classes/scaling from the training labels; everything else is stateless."""

    name: ClassVar[str]
    primary_metric: ClassVar[str]  # early stopping and best-epoch choice
    maximize: ClassVar[bool] = True

    def __init__(self, label: str, label_sep: str | None = None, threshold: float = 0.5):
        self.label, self.label_sep, self.threshold = label, label_sep, threshold

    # --- labels -------------------------------------------------------------------------------------------------
    def fit(self, labels: pd.Series) -> "Task":
        return self

    def encode(self, labels: pd.Series) -> Tensor:
        """Labels (N,) -> training targets; rows with a missing label must be removed before."""
        raise NotImplementedError

    @property
    def out_dim(self) -> int:
        raise NotImplementedError

    # --- model outputs ------------------------------------------------------------------------------------------
    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def outputs(self, logits: Tensor) -> np.ndarray:
        """Logits (N, out_dim) -> probabilities (classification) or values (regression), shape (N, K)."""
        raise NotImplementedError

    def metrics(self, target: Tensor, outputs: np.ndarray) -> dict[str, float]:
        raise NotImplementedError

    def prediction_frame(self, outputs: np.ndarray) -> pd.DataFrame:
        """``prediction`` plus one ``proba_<class>`` column per class."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, **vars(self)}

    @staticmethod
    def from_state(state: dict[str, Any]) -> "Task":
        state = dict(state)
        cls = TASKS[state.pop("name")]
        task = cls.__new__(cls)
        task.__dict__.update(state)
        return task


class _ClassTask(Task):
    classes: list[Any]

    def fit(self, labels: pd.Series) -> "_ClassTask":
        unique = pd.unique(labels)
        try:
            self.classes = [_native(v) for v in sorted(unique)]
        except TypeError:  # mixed types: compare as text
            self.classes = sorted({str(v) for v in unique})
        return self

    def encode(self, labels: pd.Series) -> Tensor:
        index = {c: i for i, c in enumerate(self.classes)}
        keys = labels.astype(str) if isinstance(self.classes[0], str) else labels
        ids = []
        for row, value in zip(labels.index, keys):
            if value not in index:
                raise DataError(f"row {row}: label {value!r} in column {self.label!r} was not seen in training; "
                                f"classes are: {', '.join(map(str, self.classes))}")
            ids.append(index[value])
        return torch.tensor(ids, dtype=torch.long)

    def prediction_frame(self, outputs: np.ndarray) -> pd.DataFrame:
        frame = pd.DataFrame({"prediction": [self.classes[i] for i in outputs.argmax(1)]})
        for i, c in enumerate(self.classes):
            frame[f"proba_{c}"] = outputs[:, i]
        return frame

    def metrics(self, target: Tensor, outputs: np.ndarray) -> dict[str, float]:
        y, k = target.numpy(), len(self.classes)
        pred = outputs.argmax(1)
        result = {"accuracy": skm.accuracy_score(y, pred),
                  "macro_f1": skm.f1_score(y, pred, average="macro", labels=range(k), zero_division=0),
                  "log_loss": skm.log_loss(y, np.clip(outputs, 1e-7, 1), labels=range(k))}
        if len(np.unique(y)) == k:  # ROC-AUC needs every class in the evaluated rows
            result["roc_auc"] = (skm.roc_auc_score(y, outputs[:, 1]) if k == 2
                                 else skm.roc_auc_score(y, outputs, multi_class="ovr", labels=range(k)))
        return {name: float(v) for name, v in result.items()}


class BinaryTask(_ClassTask):
    """Two classes: one logit, sigmoid, binary cross-entropy (the seed's Dense(1, sigmoid))."""

    name, primary_metric = "binary", "accuracy"
    out_dim = 1

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits.squeeze(1), target.float())

    def outputs(self, logits: Tensor) -> np.ndarray:
        p = torch.sigmoid(logits.squeeze(1).float()).numpy()
        return np.stack([1 - p, p], axis=1)  # (N, 2)


class MulticlassTask(_ClassTask):
    """K > 2 classes: K logits, softmax cross-entropy."""

    name, primary_metric = "multiclass", "accuracy"

    @property
    def out_dim(self) -> int:
        return len(self.classes)

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits, target)

    def outputs(self, logits: Tensor) -> np.ndarray:
        return torch.softmax(logits.float(), dim=1).numpy()


class MultilabelTask(Task):
    """Any subset of K labels per row: K logits, independent sigmoids, threshold for the 0/1 decision."""

    name, primary_metric = "multilabel", "micro_f1"
    classes: list[str]

    def fit(self, labels: pd.Series) -> "MultilabelTask":
        self.classes = sorted({name for cell in labels for name in parse_label_list(cell, self.label_sep)})
        if not self.classes:
            raise DataError(f"label column {self.label!r} holds no label names")
        return self

    def encode(self, labels: pd.Series) -> Tensor:
        index = {c: i for i, c in enumerate(self.classes)}
        target = torch.zeros(len(labels), len(self.classes))
        for r, cell in enumerate(labels):
            for name in parse_label_list(cell, self.label_sep):
                if name not in index:
                    raise DataError(f"row {labels.index[r]}: label {name!r} was not seen in training")
                target[r, index[name]] = 1
        return target

    @property
    def out_dim(self) -> int:
        return len(self.classes)

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, target)

    def outputs(self, logits: Tensor) -> np.ndarray:
        return torch.sigmoid(logits.float()).numpy()

    def metrics(self, target: Tensor, outputs: np.ndarray) -> dict[str, float]:
        y, pred = target.numpy().astype(int), (outputs >= self.threshold).astype(int)
        return {"micro_f1": float(skm.f1_score(y, pred, average="micro", zero_division=0)),
                "macro_f1": float(skm.f1_score(y, pred, average="macro", zero_division=0)),
                "subset_accuracy": float(skm.accuracy_score(y, pred)),
                "log_loss": float(F.binary_cross_entropy(torch.tensor(outputs).clamp(1e-7, 1 - 1e-7), target.float()))}

    def prediction_frame(self, outputs: np.ndarray) -> pd.DataFrame:
        chosen = outputs >= self.threshold
        sep = self.label_sep or ","
        frame = pd.DataFrame({"prediction": [sep.join(c for c, on in zip(self.classes, row) if on) for row in chosen]})
        for i, c in enumerate(self.classes):
            frame[c] = chosen[:, i].astype(int)
            frame[f"proba_{c}"] = outputs[:, i]
        return frame


class RegressionTask(Task):
    """A number: one output trained on the standardised target with MSE, reported in the original units."""

    name, primary_metric, maximize = "regression", "rmse", False
    out_dim = 1
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

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(logits.squeeze(1), target)

    def outputs(self, logits: Tensor) -> np.ndarray:
        return logits.float().numpy() * self.std + self.mean  # (N, 1) in label units

    def metrics(self, target: Tensor, outputs: np.ndarray) -> dict[str, float]:
        y, pred = target.numpy() * self.std + self.mean, outputs[:, 0]
        return {"rmse": float(np.sqrt(skm.mean_squared_error(y, pred))), "mae": float(skm.mean_absolute_error(y, pred)),
                "r2": float(skm.r2_score(y, pred)) if len(y) > 1 else float("nan")}

    def prediction_frame(self, outputs: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"prediction": outputs[:, 0]})


TASKS: dict[str, type[Task]] = {t.name: t for t in (BinaryTask, MulticlassTask, MultilabelTask, RegressionTask)}


def infer_task(labels: pd.Series, label_sep: str | None = None) -> str:
    """Guess the task from the label column's values (missing labels already removed)."""
    if label_sep is not None or labels.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
        return "multilabel"
    if not pd.api.types.is_numeric_dtype(labels) and labels.astype(str).str.strip().str.startswith("[").all():
        return "multilabel"
    n_unique = labels.nunique()
    if n_unique < 2:
        raise DataError(f"label column {labels.name!r} has only one distinct value; nothing to learn")
    if n_unique == 2:
        return "binary"
    if pd.api.types.is_numeric_dtype(labels):
        integer = np.allclose(labels, np.round(labels))
        return "multiclass" if integer and n_unique <= 20 else "regression"
    return "multiclass"


def create_task(name: str, label: str, label_sep: str | None = None, threshold: float = 0.5) -> Task:
    if name not in TASKS:
        raise DataError(f"unknown task {name!r}; choose from: auto, {', '.join(TASKS)}")
    return TASKS[name](label, label_sep=label_sep, threshold=threshold)
