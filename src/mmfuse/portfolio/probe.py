"""Value before cost: a stage that costs much is tried cheaply first and kept only when it adds on validation
(``adds``: greedy selection over the validation outputs with the candidate, against without it: the ensemble's
validation error, 1 - the primary metric or the RMSE, down by at least ``margin`` of it, or left as it is and the log
loss down by ``margin``; a small validation split often ties on accuracy: emoji's 325 rows did, where the network was
worth +0.024 test accuracy). Two stages are probed: frozen text features on a sample of a large table's rows
(``estimators.backbone_probe``), and the network after its first few epochs against the members fitted before it
(``NetworkProbe``): when it adds nothing its training stops there and the portfolio leaves it out, saying what the
probe measured::

    network: probe +0.0000 valid accuracy, log loss +0.3% in 9 s: skipped

The network's outputs after a few epochs are worse than after all of them, so the probe errs towards skipping a
network that would have added late; on the tables it was measured on, the networks that ended with weight 0 already
added nothing at the probe (``benchmarks/realdata.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

from ..tasks.base import Task
from .selection import combine, greedy_selection

PROBE_EPOCHS, PROBE_MARGIN, PROBE_ROUNDS = 3, 0.01, 25


@dataclass(frozen=True)
class Verdict:
    """What a probe measured: ``gain`` in the primary metric (higher is better), ``loss_gain`` the log loss's
    relative fall, and whether the candidate is ``kept``."""

    kept: bool
    gain: float
    loss_gain: float
    metric: str

    def describe(self) -> str:
        loss = f", log loss {-100 * self.loss_gain:+.1f}%" if self.loss_gain else ""
        return f"probe {self.gain:+.4f} valid {self.metric}{loss}"


def adds(without: dict[str, np.ndarray], with_: dict[str, np.ndarray], target: Tensor, task: Task,
         rounds: int = PROBE_ROUNDS, margin: float = PROBE_MARGIN, weight: np.ndarray | None = None) -> Verdict:
    """Whether greedy selection over the validation outputs ``with_`` (member -> (N, K)) beats it over ``without``:
    the error (1 - the primary metric, or the RMSE) down by ``margin`` of it, or not up and the log loss down by
    ``margin`` of it."""
    error, loss = _errors(without, target, task, rounds, weight)
    error_with, loss_with = _errors(with_, target, task, rounds, weight)
    gain, loss_gain = error - error_with, (loss - loss_with) / loss if loss else 0.0
    return Verdict(gain > margin * error or (gain >= 0 and loss_gain > margin), gain, loss_gain, task.primary_metric)


def _errors(outputs: dict[str, np.ndarray], target: Tensor, task: Task, rounds: int,
            weight: np.ndarray | None) -> tuple[float, float]:
    """The validation error and log loss (0: regression) of greedy selection's ensemble over ``outputs`` (none: the
    worst error, so that anything adds)."""
    if not outputs:
        return float("inf"), 0.0
    weights = greedy_selection(outputs, target, task, rounds, weight)
    metrics = task.metrics(target, combine(outputs, weights), weight, (task.primary_metric, "log_loss"))
    score = metrics.get(task.primary_metric, float("nan"))
    return (1.0 - score if task.maximize else score), metrics.get("log_loss", 0.0)


class NetworkProbe:
    """The judge of a ``training.probe.ProbeAfter`` callback: ``outputs`` the validation outputs (N, K) of the members
    fitted before the network; after the call, ``verdict`` (None before) and ``seconds``."""

    def __init__(self, outputs: dict[str, np.ndarray], target: Tensor, task: Task, rounds: int,
                 epochs: int = PROBE_EPOCHS, margin: float = PROBE_MARGIN, weight: np.ndarray | None = None):
        self.outputs, self.target, self.task, self.rounds = dict(outputs), target, task, rounds
        self.weight = weight  # (N,) the validation rows' weights (None: 1)
        self.epochs, self.margin = epochs, margin
        self.verdict: Verdict | None = None
        self.seconds = 0.0

    @property
    def kept(self) -> bool | None:
        return None if self.verdict is None else self.verdict.kept

    @property
    def gain(self) -> float:
        return 0.0 if self.verdict is None else self.verdict.gain

    def __call__(self, logits: Tensor, seconds: float) -> bool:
        with_network = self.outputs | {"network": self.task.outputs(logits.float())}
        self.verdict = adds(self.outputs, with_network, self.target, self.task, self.rounds, self.margin, self.weight)
        self.seconds = seconds
        return self.verdict.kept

    def describe(self) -> str:
        return f"{self.verdict.describe()} in {self.seconds:.0f} s"
