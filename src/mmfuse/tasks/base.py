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
    fitted: ClassVar[tuple[str, ...]] = ()  # what fit learns
    classes: list[Any] | None = None        # class names (None: not a classification task)

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
