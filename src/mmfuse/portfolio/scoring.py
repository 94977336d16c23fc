"""How the portfolio compares candidate outputs on validation rows: the task's primary metric, ties broken by the
log loss (classification), so that small validation splits still rank candidates sensibly."""

from __future__ import annotations

import math

import numpy as np
from torch import Tensor

from ..tasks.base import Task


def selection_key(task: Task, target: Tensor, outputs: np.ndarray, weight: np.ndarray | None = None,
                  ) -> tuple[float, float]:
    """(primary metric, minus log loss), both higher-is-better, each row counted with its ``weight`` (None: 1);
    regression: (minus RMSE, 0). A primary metric that does not apply to the rows ranks last."""
    metrics = task.metrics(target, outputs, weight, (task.primary_metric, "log_loss"))
    primary = metrics.get(task.primary_metric, math.nan) * (1 if task.maximize else -1)
    return (-math.inf if math.isnan(primary) else round(primary, 10)), -metrics.get("log_loss", 0.0)
