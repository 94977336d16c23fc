"""The task base class: reads its label column, gives its output width, loss, probabilities and metrics.

Task state (class names, target scaling) is JSON so a bundle can rebuild it (``tasks.task_from_state``).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Iterable

import numpy as np
import pandas as pd
from torch import Tensor

from ..errors import ConfigError


LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})


class Task:
    """Base class. ``fit`` learns the state named in ``fitted`` (classes, target scaling) from the training labels;
    everything else is stateless. The settings (label, label_sep, threshold, metric) and the fitted state are the
    whole state a bundle saves (``state_dict``).

    ``primary_metric`` is what every choice made on validation rows optimises (the members' settings, ensemble
    selection, the network's early stopping and best epoch, the leaderboard's columns): the task's own, or the one
    ``metric`` (a user's ``eval_metric``) names among ``metric_names``."""

    name: ClassVar[str]
    primary_metric: str  # the class's default; an instance's ``metric`` replaces it
    metric_names: ClassVar[tuple[str, ...]] = ()  # what ``metric`` may name
    # what the logits mean, which callers ask instead of the task's name: "logit" (one logit of the second class,
    # sigmoid), "softmax" (K logits, one class per row), "sigmoids" (K independent labels), "value" (a standardised
    # number), "embedding" (a retrieval tower's vector)
    output_kind: ClassVar[str]
    fitted: ClassVar[tuple[str, ...]] = ()  # what fit learns
    classes: list[Any] | None = None        # class names (None: not a classification task)

    def __init__(self, label: str, label_sep: str | None = None, threshold: float = 0.5, metric: str | None = None):
        self.label, self.label_sep, self.threshold = label, label_sep, threshold
        if metric is not None and metric != self.primary_metric:
            if metric not in self.metric_names:
                raise ConfigError(f"eval_metric {metric!r} does not apply to a {self.name} task; choose from: "
                                  f"{', '.join(self.metric_names)}")
            self.primary_metric = metric

    @property
    def maximize(self) -> bool:
        """Whether a higher ``primary_metric`` is better."""
        return self.primary_metric not in LOWER_IS_BETTER

    @property
    def own_metric(self) -> bool:
        """Whether ``primary_metric`` is the task's default (members may then stop on their own loss, which tracks
        it); False: a user's ``eval_metric`` named another, which they stop on too."""
        return self.primary_metric == type(self).primary_metric

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
    def loss(self, logits: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        """The mean of ``row_loss`` over the rows, each counted with its ``weight`` (N,) (None: 1):
        sum(w * l) / sum(w), so a row of weight 2 counts as that row twice."""
        rows = self.row_loss(logits, target)
        return rows.mean() if weight is None else (rows * weight).sum() / weight.sum().clamp(min=1e-12)

    def row_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """(N,) each row's loss (a multilabel row's: the mean over its labels)."""
        raise NotImplementedError

    def outputs(self, logits: Tensor) -> np.ndarray:
        """Logits (N, out_dim) -> probabilities (classification) or values (regression), shape (N, K)."""
        return self.output_tensor(logits).numpy()

    def output_tensor(self, logits: Tensor) -> Tensor:
        """``outputs`` as tensor operations (float32), which an exported graph records."""
        raise NotImplementedError

    def metrics(self, target: Tensor, outputs: np.ndarray, weight: np.ndarray | None = None,
                names: Iterable[str] | None = None) -> dict[str, float]:
        """Metric name -> value of ``outputs`` (N, K) against ``target``, each row counted with its ``weight`` (N,)
        (None: 1); ``names``: only these (None: all the task has; one that does not apply to the rows, as ROC-AUC
        where every row has one class, is left out)."""
        raise NotImplementedError

    def score(self, target: Tensor, outputs: np.ndarray, weight: np.ndarray | None = None) -> float:
        """The ``primary_metric`` alone (NaN where it does not apply to the rows)."""
        return self.metrics(target, outputs, weight, (self.primary_metric,)).get(self.primary_metric, float("nan"))

    def prediction_frame(self, outputs: np.ndarray) -> pd.DataFrame:
        """``prediction`` plus one ``proba_<class>`` column per class."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "label_sep": self.label_sep, "threshold": self.threshold,
                "metric": self.primary_metric, **{k: getattr(self, k) for k in self.fitted}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Task":
        task = cls(state["label"], state.get("label_sep"), state.get("threshold", 0.5), state.get("metric"))
        for name in cls.fitted:
            setattr(task, name, state[name])
        return task


def evaluate(compute: dict[str, Callable[[], Any]], names: Iterable[str] | None) -> dict[str, float]:
    """Run the metric functions ``names`` asks for (None: all), as floats; one that returns None is left out."""
    values = {name: compute[name]() for name in (compute if names is None else names) if name in compute}
    return {name: float(v) for name, v in values.items() if v is not None}
