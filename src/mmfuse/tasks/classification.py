"""Classification tasks: binary (one logit), multiclass (softmax), multilabel (independent sigmoids)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn import metrics as skm
from torch import Tensor

from ..errors import DataError
from ..io.bounded_json import loads
from ..registry import TASKS
from .base import Task


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


class _ClassTask(Task):
    fitted = ("classes",)

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


@TASKS.register("binary", labelled=True)
class BinaryTask(_ClassTask):
    """Two classes: one logit, sigmoid, binary cross-entropy (the seed's Dense(1, sigmoid))."""

    name, primary_metric, output_kind = "binary", "accuracy", "logit"
    out_dim = 1

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits.squeeze(1), target.float())

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

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits, target)

    def output_tensor(self, logits: Tensor) -> Tensor:
        return torch.softmax(logits.float(), dim=1)


@TASKS.register("multilabel", labelled=True)
class MultilabelTask(Task):
    """Any subset of K labels per row: K logits, independent sigmoids, threshold for the 0/1 decision."""

    name, primary_metric, output_kind = "multilabel", "micro_f1", "sigmoids"
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

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, target)

    def output_tensor(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits.float())

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
