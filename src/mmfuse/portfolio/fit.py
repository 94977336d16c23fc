"""Fitting a portfolio, in one object the estimator calls: the members named, in the registry's cost order (the
network last), each skipped when it does not learn the task, has nothing to read, needs a member that did not fit or
cannot start in what is left of the ``TimeBudget``; each fitted one saved to (or resumed from) the run's
``MemberStore``; under DDP, rank 0's members sent to the other ranks as the network starts; then the weights and the
calibration chosen on validation (``ensemble.Portfolio.select``).

    portfolio = PortfolioFit(names, task, budget, seed=0, threads=2, log=log, given={"network": network}).run(data)
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import numpy as np
import torch

from ..errors import DataError
from ..io.members import members_from_bytes, members_to_bytes
from ..registry import MEMBERS
from ..tasks.base import Task
from .budget import TimeBudget
from .ensemble import Portfolio, leaderboard_row
from .flat import TENSORS
from .member import FitData, Member, Stacked
from .store import Finished, MemberStore


class PortfolioFit:
    """One portfolio fit. ``given``: members the caller set up (the network, with its model and training plan); the
    others are made from the registry with the seed and thread count. ``log(message, level)`` says what happens
    (each member's score or why it was skipped, the weights). ``rank``, ``world``: this process under DDP
    (rank > 0 fits the network only, and receives rank 0's other members when training starts)."""

    def __init__(self, names: list[str], task: Task, budget: TimeBudget, *, seed: int, threads: int,
                 log: Callable[..., None], given: dict[str, Member] | None = None, store: MemberStore | None = None,
                 rounds: int = 25, calibrate: bool = True, rank: int = 0, world: int = 1):
        self.names = sorted(names, key=lambda n: MEMBERS.meta(n).get("cost", 9))
        self.task, self.budget, self.seed, self.threads, self.log = task, budget, seed, threads, log
        self.given, self.store, self.rounds, self.calibrate = given or {}, store, rounds, calibrate
        self.rank, self.world = rank, world
        self.portfolio = Portfolio()
        self.outputs: dict[str, np.ndarray] = {}   # fitted member -> its validation outputs (N_valid, K)
        self.stacks: dict[str, Stacked] = {}       # what members that are read give their readers

    def run(self, data: FitData) -> Portfolio:
        members = {name: self.given.get(name) or MEMBERS.get(name)(seed=self.seed, threads=self.threads)
                   for name in self.names}
        if self.lone(members):
            return self._fit_alone(data, *members.items())
        for name, member in members.items():
            if self.rank > 0 and not member.saved_apart:
                continue  # rank 0 fits it and sends it as the network starts (``_payload``)
            self._fit_or_skip(name, member, data)
        if not self.outputs and self.rank == 0:
            raise DataError("no portfolio member could be fitted: " + "; ".join(
                f"{r['member']}: {r['status']}" for r in self.portfolio.board))
        skipped = self.portfolio.select(self.outputs, data.valid_target, self.task, self.rounds, self.calibrate)
        if skipped:
            self.log(skipped, logging.WARNING)
        chosen = ", ".join(f"{n} {w:.2f}" for n, w in self.portfolio.weights.items())
        self.log(f"ensemble: {chosen}" + "".join(f"; {k.replace('_', ' ')} {v:.4f}"
                                                 for k, v in self.portfolio.calibration.items()))
        return self.portfolio

    def unread(self, data: FitData) -> list[str]:
        """The inputs no fitted member reads: none when one reads the prepared inputs (the network), else those
        whose processor gives no flat view."""
        if any(not m.reads_views for m in self.portfolio.members.values()):
            return []
        return sorted(n for n, v in data.train.views.items() if all(getattr(v, f) is None for f in TENSORS))

    def lone(self, members: dict[str, Member]) -> bool:
        """A portfolio of one member saved apart (the network alone): its outputs are the model's, as trained (no
        selection, no calibration, no portfolio files)."""
        return len(members) == 1 and next(iter(members.values())).saved_apart

    def _fit_alone(self, data: FitData, named: tuple[str, Member]) -> Portfolio:
        name, member = named
        self.portfolio = Portfolio.alone(name, member.fit(data, self.task, self.budget, {}))
        return self.portfolio

    # --- one member ------------------------------------------------------------------------------------------------
    def _fit_or_skip(self, name: str, member: Member, data: FitData) -> None:
        done = self.store.load(name) if self.store is not None and not member.saved_apart else None
        if done is not None:
            self.budget.credit(done.seconds)  # a resumed fit gets what is left of the budget
        else:
            if member.open_ended:
                self._open_ended_start(name, member)
            why_not = self._why_not(member, data)
            if why_not is not None:
                self.portfolio.board.append({"member": name, "status": f"skipped: {why_not}"})
                self.log(f"member {name}: skipped ({why_not})")
                return
            done = self._fit_one(name, member, data)
            if self.store is not None and not member.saved_apart:
                self.store.save(name, done)
        self.portfolio.members[name], self.outputs[name] = done.member, done.outputs
        if done.stacked is not None:
            self.stacks[name] = done.stacked
        self.portfolio.board.append(done.row)
        self.log(f"member {name}: valid {self.task.primary_metric} {done.row['valid']:.4f} in {done.seconds:.1f} s")

    def _open_ended_start(self, name: str, member: Member) -> None:
        """Before a member whose fit has no end of its own (the network): the default time limit when none was
        given (under DDP every rank takes it: rank 0's clock decides, broadcast with the members), and the other
        ranks' share of rank 0's members."""
        if (self.portfolio.members or self.world > 1) and self.budget.set_default() is not None:
            self.log(f"time limit: {self.budget.seconds:.0f} s for the whole fit (none given: max(120 s, 3x the "
                     f"{self.budget.elapsed():.0f} s before the {name})); the {name} trains for what is left")
        if self.world > 1:
            from ..training.share import ShareFromRankZero

            member.plan.callbacks.append(ShareFromRankZero(self._payload, self._receive))

    def _why_not(self, member: Member, data: FitData) -> str | None:
        """Why ``member`` is not fitted (None: it is)."""
        why_not = member.supports(self.task) or member.applies(data)
        if why_not is None and any(r in self.names and r not in self.portfolio.members for r in member.reads):
            why_not = f"needs {', '.join(member.reads)}, which did not fit"
        if why_not is None and self.budget.exhausted() and self.portfolio.members:
            why_not = "no time left of the time limit"
        if why_not is None and member.reads_views:
            cost = member.cost_hint(data, self.task, self.threads)
            if not self.budget.allows(cost):
                why_not = f"estimated {cost:.0f} s, {self.budget.left():.0f} s of the time limit left"
        return why_not

    def _fit_one(self, name: str, member: Member, data: FitData) -> Finished:
        """Fit one member (fed the stacked features of the members it reads); when another member reads it, also
        what it gives them (``Member.stacked``)."""
        start = time.perf_counter()
        upstream = {r: self.stacks[r] for r in member.reads if r in self.stacks}
        member.fit(data, self.task, self.budget, upstream)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        logits = member.valid_logits(data, {r: s.valid for r, s in upstream.items()})
        outputs = self.task.outputs(torch.from_numpy(logits))
        per_row = 1000 * (time.perf_counter() - start) / max(len(data.valid_set), 1)
        mine = None
        if any(name in MEMBERS.get(n).reads for n in self.names):
            start = time.perf_counter()
            mine = member.stacked(data, self.task)
            seconds += time.perf_counter() - start
        return Finished(member, outputs, mine, leaderboard_row(name, self.task, data.valid_target, outputs, seconds,
                                                               per_row), seconds)

    # --- DDP: rank 0's members to the other ranks ----------------------------------------------------------------------
    def _payload(self) -> bytes:
        meta, arrays = self.portfolio.state()
        return members_to_bytes(meta, arrays | {f"valid_outputs/{n}": v for n, v in self.outputs.items()})

    def _receive(self, data: bytes) -> None:
        meta, arrays = members_from_bytes(data)
        received = Portfolio.from_state(meta, arrays)
        self.portfolio.members.update(received.members)
        self.portfolio.board[:0] = received.board
        self.outputs = {n: arrays[f"valid_outputs/{n}"] for n in received.members} | self.outputs
