"""How the portfolio compares candidate outputs on validation rows: the task's primary metric, ties broken by the
log loss (classification), so that small validation splits still rank candidates sensibly."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from ..tasks.base import Task


def selection_key(task: Task, target: Tensor, outputs: np.ndarray) -> tuple[float, float]:
    """(primary metric, minus log loss), both higher-is-better; regression: (minus RMSE, 0)."""
    metrics = task.metrics(target, outputs)
    primary = metrics[task.primary_metric] * (1 if task.maximize else -1)
    return round(primary, 10), -metrics.get("log_loss", 0.0)
