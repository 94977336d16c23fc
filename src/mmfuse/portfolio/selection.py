"""Greedy ensemble selection (Caruana et al., 2004, with replacement): start from nothing, add in each round the
member whose addition makes the averaged validation outputs score best, and weight each member by how often it was
added. Selection runs on the validation split's outputs: every member's settings (C, rounds, epochs) were picked on
the same rows, so its outputs there are slightly optimistic, but out-of-fold outputs would need the network fitted
k times, which the time budget of a CPU fit does not allow; with replacement and a few rounds (weights in steps of
1 / rounds) the choice stays coarse, which is what keeps it from fitting a small validation split's noise."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from ..tasks.base import Task
from .scoring import selection_key


def greedy_selection(outputs: dict[str, np.ndarray], target: Tensor, task: Task, rounds: int = 25,
                     weight: np.ndarray | None = None) -> dict[str, float]:
    """Member name -> weight (summing to 1) from ``rounds`` greedy additions to an averaged ensemble of the members'
    validation outputs (N, K), each row scored with its ``weight`` (N,) (None: 1); ties go to the member listed
    first."""
    names = list(outputs)
    counts = dict.fromkeys(names, 0)
    total = np.zeros_like(next(iter(outputs.values())), dtype=np.float64)
    for size in range(1, rounds + 1):
        keys = {n: selection_key(task, target, ((total + outputs[n]) / size).astype(np.float32), weight) for n in names}
        best = max(names, key=lambda n: keys[n])
        counts[best] += 1
        total += outputs[best]
    return {n: c / rounds for n, c in counts.items() if c}


def combine(outputs: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """The weighted average of the members' outputs (N, K)."""
    return sum(w * outputs[n].astype(np.float64) for n, w in weights.items()).astype(np.float32)
