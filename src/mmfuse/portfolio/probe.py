"""Value before cost: the network is probed after its first few epochs, and trains on only when its validation
outputs then add to the ensemble of the members fitted before it (greedy selection over them with it, against
without it): by at least ``margin`` of the ensemble's validation error (1 - the primary metric, or the RMSE).
Otherwise its training stops there and the portfolio leaves it out, saying what the probe measured::

    network: probe +0.0000 valid accuracy in 9 s: skipped

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
    fitted before the network; after the call, ``kept``, ``gain`` (in the primary metric, higher is better) and
    ``seconds``."""

    def __init__(self, outputs: dict[str, np.ndarray], target: Tensor, task: Task, rounds: int,
                 epochs: int = PROBE_EPOCHS, margin: float = PROBE_MARGIN):
        self.outputs, self.target, self.task, self.rounds = dict(outputs), target, task, rounds
        self.epochs, self.margin = epochs, margin
        self.kept: bool | None = None
        self.gain = self.seconds = 0.0

    def __call__(self, logits: Tensor, seconds: float) -> bool:
        without = self._error(self.outputs)
        with_it = self._error(self.outputs | {"network": self.task.outputs(logits.float()).astype(np.float32)})
        self.gain, self.seconds = without - with_it, seconds
        self.kept = without - with_it > self.margin * without
        return self.kept

    def _error(self, outputs: dict[str, np.ndarray]) -> float:
        """The validation error of greedy selection's ensemble over ``outputs``."""
        weights = greedy_selection(outputs, self.target, self.task, self.rounds)
        score = self.task.metrics(self.target, combine(outputs, weights))[self.task.primary_metric]
        return 1.0 - score if self.task.maximize else score

    def describe(self) -> str:
        return f"probe {self.gain:+.4f} valid {self.task.primary_metric} in {self.seconds:.0f} s"
