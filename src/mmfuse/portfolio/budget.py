"""A fit's time limit, with one owner: the ``TimeBudget`` made when ``fit`` starts and passed down to whatever spends
time (the frozen features' plan, each member's fit). It holds the whole policy:

- the limit (``time_limit``; none given: the fit has no limit until the portfolio's last member, the network, starts,
  and then gets ``DEFAULT_FLOOR`` or ``DEFAULT_FACTOR`` times the seconds spent before it, whichever is more, plus
  the seconds reserved for the refit: the cheap members have scored by then, so the network may take a few times
  their cost but not ten);
- the share of the limit the frozen features may take (``FROZEN_SHARE``; ``estimators.time_plan`` gives their
  inputs fast encoders when the estimate is over it);
- the seconds left, which each member's fit receives and stops at (LightGBM after the round, L-BFGS after the
  iteration, the network after the batch that passes them), keeping the best state it reached;
- the seconds held back for the refit on every labelled row (``reserve``), which the network leaves unspent.

Estimates (``portfolio.rates``) only order the members and skip one that cannot start in what is left.
"""

from __future__ import annotations

import time

DEFAULT_FLOOR, DEFAULT_FACTOR = 120.0, 3.0
# of the time limit the frozen features may take, picked on validation (the curve's runs, seed 0): 0.75 keeps
# MiniLM at fortunes' 30 s (estimate 17 s; valid accuracy 0.683, not 0.602) and EfficientNet at emoji's 60 s (42 s;
# 0.938, not 0.830), about level at movies' 120 s (65 s; drama 0.738 not 0.753, rating RMSE 0.921 either way)
FROZEN_SHARE = 0.75


class TimeBudget:
    """Seconds left of a fit's time limit (``seconds`` None: no limit), counted from its creation."""

    def __init__(self, seconds: float | None):
        self.seconds, self.start = seconds, time.perf_counter()
        self.given = seconds is not None
        self.reserved = 0.0  # seconds the network leaves for what follows it (the refit)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float | None:
        """Seconds left (None: no limit); below 0 once the limit has passed."""
        return None if self.seconds is None else self.seconds - self.elapsed()

    def deadline(self) -> float | None:
        """The ``time.perf_counter()`` reading at which the limit runs out (None: no limit)."""
        return None if self.seconds is None else self.start + self.seconds

    def set_default(self) -> float | None:
        """With no limit given, set the default one now (the network is about to start: see the module), plus what
        is ``reserved`` for after the network; returns it (None: a limit was given, and stays)."""
        if self.given:
            return None
        self.seconds = max(DEFAULT_FLOOR, DEFAULT_FACTOR * self.elapsed()) + self.reserved
        return self.seconds

    def credit(self, seconds: float) -> None:
        """Count ``seconds`` spent before (by a fit this one resumes) as elapsed."""
        self.start -= seconds

    def allows(self, cost: float) -> bool:
        """Whether a member estimated at ``cost`` seconds can start in what is left."""
        left = self.left()
        return left is None or cost <= left

    def exhausted(self) -> bool:
        left = self.left()
        return left is not None and left <= 0

    def reserve(self, seconds: float) -> None:
        """Hold back ``seconds`` of what is left from the network, for the refit that follows it."""
        self.reserved = seconds

    def network_limit(self, own: float | None) -> float | None:
        """The seconds the network may train: what is left less what is reserved (at least 1 s), within its own
        limit (the config's ``train.network_time_limit``) when it has one."""
        left = self.left()
        if left is None:
            return own
        left -= self.reserved
        return max(1.0, min(left, own or left))


def past(deadline: float | None) -> bool:
    """Whether ``deadline`` (a ``time.perf_counter()`` reading; None: none) has passed."""
    return deadline is not None and time.perf_counter() >= deadline
