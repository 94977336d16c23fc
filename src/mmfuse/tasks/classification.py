"""Classification tasks: binary (one logit), multiclass (softmax), multilabel (independent sigmoids)."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn import metrics as skm
from torch import Tensor

from ..errors import DataError
from ..io.bounded_json import loads
from ..registry import TASKS
from .base import Task, evaluate


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def parse_label_list(value: Any, sep: str | None) -> list[str]:
    """A multilabel cell -> label names: a list, a JSON list string, or a ``sep``-delimited string."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        try:
            return [str(v) for v in loads(text, "label cell", max_depth=1)]
        except ValueError as err:
            raise DataError(f"label cell {text[:80]!r} starts with '[' but is not a JSON list of labels: {err}") from None
    if sep is None:
        return [text] if text else []
    return [part.strip() for part in text.split(sep) if part.strip()]


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray, weight: np.ndarray | None) -> float:
    """The mean of the (weighted) recalls of the classes present in ``y`` (scikit-learn's
    ``balanced_accuracy_score``)."""
    w = np.ones(len(y)) if weight is None else weight
    return float(np.mean([w[(y == c) & (pred == c)].sum() / w[y == c].sum() for c in np.unique(y)]))


def _roc_auc(y: np.ndarray, outputs: np.ndarray, weight: np.ndarray | None) -> float | None:
    """Macro one-vs-rest ROC-AUC of (N, K) 0/1 labels and scores, over the columns with both values among the rows
    (a class absent from a small validation split is left out, not a failure); None when none has. Binary: the
    positive class's AUC, which both columns give."""
    both = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    if not both:
        return None
    return float(np.mean([skm.roc_auc_score(y[:, j], outputs[:, j], sample_weight=weight) for j in both]))


class _ClassTask(Task):
    fitted = ("classes",)
    metric_names = ("accuracy", "balanced_accuracy", "macro_f1", "log_loss", "roc_auc")

    def fit(self, labels: pd.Series) -> "_ClassTask":
        unique = pd.unique(labels)
        try:
            self.classes = [_native(v) for v in sorted(unique)]
        except TypeError:  # mixed types: compare as text
            self.classes = sorted({str(v) for v in unique})
        if len(self.classes) < 2:
            raise DataError(f"label column {self.label!r} has only one class in the training rows "
                            f"({self.classes[0]!r}); nothing to learn")
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

    def metrics(self, target: Tensor, outputs: np.ndarray, weight: np.ndarray | None = None,
                names: Iterable[str] | None = None) -> dict[str, float]:
        y, k, w = target.numpy(), len(self.classes), weight
        pred = outputs.argmax(1)
        return evaluate({
            "accuracy": lambda: skm.accuracy_score(y, pred, sample_weight=w),
            "balanced_accuracy": lambda: _balanced_accuracy(y, pred, w),
            "macro_f1": lambda: skm.f1_score(y, pred, average="macro", labels=range(k), zero_division=0,
                                             sample_weight=w),
            "log_loss": lambda: skm.log_loss(y, np.clip(outputs, 1e-7, 1), labels=range(k), sample_weight=w),
            "roc_auc": lambda: _roc_auc(np.eye(k, dtype=int)[y], outputs, w)}, names)


@TASKS.register("binary", labelled=True)
class BinaryTask(_ClassTask):
    """Two classes: one logit, sigmoid, binary cross-entropy (the seed's Dense(1, sigmoid))."""

    name, primary_metric, output_kind = "binary", "accuracy", "logit"
    out_dim = 1

    def row_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits.squeeze(1), target.float(), reduction="none")

    def output_tensor(self, logits: Tensor) -> Tensor:
        p = torch.sigmoid(logits.squeeze(1).float())
        return torch.stack([1 - p, p], dim=1)  # (N, 2)


@TASKS.register("multiclass", labelled=True)
class MulticlassTask(_ClassTask):
    """K > 2 classes: K logits, softmax cross-entropy."""

    name, primary_metric, output_kind = "multiclass", "accuracy", "softmax"

    @property
    def out_dim(self) -> int:
        return len(self.classes)

    def row_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits, target, reduction="none")

    def output_tensor(self, logits: Tensor) -> Tensor:
        return torch.softmax(logits.float(), dim=1)


@TASKS.register("multilabel", labelled=True)
class MultilabelTask(Task):
    """Any subset of K labels per row: K logits, independent sigmoids, threshold for the 0/1 decision."""

    name, primary_metric, output_kind = "multilabel", "micro_f1", "sigmoids"
    metric_names = ("micro_f1", "macro_f1", "log_loss", "roc_auc")
    fitted = ("classes",)

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

    def row_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(1)

    def output_tensor(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits.float())

    def metrics(self, target: Tensor, outputs: np.ndarray, weight: np.ndarray | None = None,
                names: Iterable[str] | None = None) -> dict[str, float]:
        y, pred, w = target.numpy().astype(int), (outputs >= self.threshold).astype(int), weight
        p = np.clip(outputs.astype(np.float64), 1e-7, 1 - 1e-7)
        return evaluate({
            "micro_f1": lambda: skm.f1_score(y, pred, average="micro", zero_division=0, sample_weight=w),
            "macro_f1": lambda: skm.f1_score(y, pred, average="macro", zero_division=0, sample_weight=w),
            "subset_accuracy": lambda: skm.accuracy_score(y, pred, sample_weight=w),
            "roc_auc": lambda: _roc_auc(y, outputs, w),
            "log_loss": lambda: np.average(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(1), weights=w)}, names)

    def prediction_frame(self, outputs: np.ndarray) -> pd.DataFrame:
        chosen = outputs >= self.threshold
        sep = self.label_sep or ","
        frame = pd.DataFrame({"prediction": [sep.join(c for c, on in zip(self.classes, row) if on) for row in chosen]})
        for i, c in enumerate(self.classes):
            frame[c] = chosen[:, i].astype(int)
            frame[f"proba_{c}"] = outputs[:, i]
        return frame
