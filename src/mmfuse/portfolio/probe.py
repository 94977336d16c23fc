"""Value before cost: the network is probed after its first few epochs, and trains on only when its validation
outputs then add to the ensemble of the members fitted before it (greedy selection over them with it, against
without it): they lower the ensemble's validation error (1 - the primary metric, or the RMSE) by at least ``margin``
of it, or leave it as it is and lower the log loss by ``margin`` (a small validation split often ties on accuracy:
emoji's 325 rows did, where the network was worth +0.024 test accuracy). Otherwise its training stops there and the
portfolio leaves it out, saying what the probe measured::

    network: probe +0.0000 valid accuracy, log loss +0.3% in 9 s: skipped

The network's outputs after a few epochs are worse than after all of them, so the probe errs towards skipping a
network that would have added late; on the tables it was measured on, the networks that ended with weight 0 already
added nothing at the probe (``benchmarks/realdata.py``).
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from ..tasks.base import Task
from .selection import combine, greedy_selection

PROBE_EPOCHS, PROBE_MARGIN = 3, 0.01


class NetworkProbe:
    """The judge of a ``training.probe.ProbeAfter`` callback: ``outputs`` the validation outputs (N, K) of the members
    fitted before the network; after the call, ``kept``, ``gain`` (in the primary metric, higher is better),
    ``loss_gain`` (the log loss's relative fall) and ``seconds``."""

    def __init__(self, outputs: dict[str, np.ndarray], target: Tensor, task: Task, rounds: int,
                 epochs: int = PROBE_EPOCHS, margin: float = PROBE_MARGIN):
        self.outputs, self.target, self.task, self.rounds = dict(outputs), target, task, rounds
        self.epochs, self.margin = epochs, margin
        self.kept: bool | None = None
        self.gain = self.loss_gain = self.seconds = 0.0

    def __call__(self, logits: Tensor, seconds: float) -> bool:
        (error, loss) = self._errors(self.outputs)
        (error_with, loss_with) = self._errors(self.outputs | {"network": self.task.outputs(logits.float())})
        self.gain, self.seconds = error - error_with, seconds
        self.loss_gain = (loss - loss_with) / loss if loss else 0.0
        self.kept = self.gain > self.margin * error or (self.gain >= 0 and self.loss_gain > self.margin)
        return self.kept

    def _errors(self, outputs: dict[str, np.ndarray]) -> tuple[float, float]:
        """The validation error and log loss (0: regression) of greedy selection's ensemble over ``outputs``."""
        weights = greedy_selection(outputs, self.target, self.task, self.rounds)
        metrics = self.task.metrics(self.target, combine(outputs, weights))
        score = metrics[self.task.primary_metric]
        return (1.0 - score if self.task.maximize else score), metrics.get("log_loss", 0.0)

    def describe(self) -> str:
        loss = f", log loss {-100 * self.loss_gain:+.1f}%" if self.loss_gain else ""
        return f"probe {self.gain:+.4f} valid {self.task.primary_metric}{loss} in {self.seconds:.0f} s"
