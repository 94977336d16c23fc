"""Exact Shapley values of a few players (the inputs of a model) from a value function of coalitions."""

from __future__ import annotations

import itertools
import math
from typing import Callable


def shapley_values(value: Callable[[frozenset[str]], float], players: list[str]) -> dict[str, float]:
    """Exact Shapley values: phi_i = sum over S without i of |S|! (n - |S| - 1)! / n! * (v(S + i) - v(S))."""
    n = len(players)
    phi = {}
    for p in players:
        rest = [q for q in players if q != p]
        total = 0.0
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for subset in itertools.combinations(rest, size):
                total += weight * (value(frozenset(subset) | {p}) - value(frozenset(subset)))
        phi[p] = total
    return phi
