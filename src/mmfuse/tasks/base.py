"""The task base class: reads its label column, gives its output width, loss, probabilities and metrics.

Task state (class names, target scaling) is JSON so a bundle can rebuild it (``tasks.task_from_state``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from torch import Tensor


class Task:
    """Base class. ``fit`` learns the state named in ``fitted`` (classes, target scaling) from the training labels;
    everything else is stateless. The settings (label, label_sep, threshold) and the fitted state are the whole
    state a bundle saves (``state_dict``)."""

    name: ClassVar[str]
    primary_metric: ClassVar[str]  # early stopping and best-epoch choice
    maximize: ClassVar[bool] = True
    # what the logits mean, which callers ask instead of the task's name: "logit" (one logit of the second class,
    # sigmoid), "softmax" (K logits, one class per row), "sigmoids" (K independent labels), "value" (a standardised
    # number), "embedding" (a retrieval tower's vector)
    output_kind: ClassVar[str]
    fitted: ClassVar[tuple[str, ...]] = ()  # what fit learns
    classes: list[Any] | None = None        # class names (None: not a classification task)

    def __init__(self, label: str, label_sep: str | None = None, threshold: float = 0.5):
        self.label, self.label_sep, self.threshold = label, label_sep, threshold

    # --- traits: what callers ask of a task ------------------------------------------------------------------
    @property
    def one_class_per_row(self) -> bool:
        """Each row has exactly one of the classes: the hold-out stratifies by it, a confusion matrix applies."""
        return self.output_kind in ("logit", "softmax")

    @property
    def independent_outputs(self) -> bool:
        """Each output column is a label of its own (its own loss terms, booster, temperature)."""
        return self.output_kind == "sigmoids"

    @property
    def has_probabilities(self) -> bool:
        """Outputs are probabilities (calibrated by temperature, ``predict_proba``), not values."""
        return self.output_kind in ("logit", "softmax", "sigmoids")

    @property
    def report_metric(self) -> str:
        """The metric robustness reports and curves plot (regression: R², comparable across tables)."""
        return self.primary_metric

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
        return self.output_tensor(logits).numpy()

    def output_tensor(self, logits: Tensor) -> Tensor:
        """``outputs`` as tensor operations (float32), which an exported graph records."""
        raise NotImplementedError

    def metrics(self, target: Tensor, outputs: np.ndarray) -> dict[str, float]:
        raise NotImplementedError

    def prediction_frame(self, outputs: np.ndarray) -> pd.DataFrame:
        """``prediction`` plus one ``proba_<class>`` column per class."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "label_sep": self.label_sep, "threshold": self.threshold,
                **{k: getattr(self, k) for k in self.fitted}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Task":
        task = cls(state["label"], state.get("label_sep"), state.get("threshold", 0.5))
        for name in cls.fitted:
            setattr(task, name, state[name])
        return task
