"""Fitting a portfolio, in one object the estimator calls: the members named, in the registry's cost order (the
network last), each skipped when it does not learn the task, has nothing to read, needs a member that did not fit or
cannot start in what is left of the ``TimeBudget``; each fitted one saved to (or resumed from) the run's
``MemberStore``; under DDP, rank 0's members sent to the other ranks as the network starts; then the weights and the
calibration chosen on validation (``ensemble.Portfolio.select``). The network is probed after its first epochs
and left out when it adds nothing to the members before it (``probe``). Then, with ``refit``, the members the ensemble
reads learned again from every labelled row (``_refit``: AutoGluon's ``refit_full``), so the rows validation picked
on train the final model too.

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
from .probe import NetworkProbe
from .store import Finished, MemberStore


class PortfolioFit:
    """One portfolio fit. ``given``: members the caller set up (the network, with its model and training plan); the
    others are made from the registry with the seed and thread count. ``log(message, level)`` says what happens
    (each member's score or why it was skipped, the weights). ``rank``, ``world``: this process under DDP
    (rank > 0 fits the network only, and receives rank 0's other members when training starts; rank 0 alone
    refits)."""

    def __init__(self, names: list[str], task: Task, budget: TimeBudget, *, seed: int, threads: int,
                 log: Callable[..., None], given: dict[str, Member] | None = None, store: MemberStore | None = None,
                 rounds: int = 25, calibrate: bool = True, refit: bool = False, probe_epochs: int = 0,
                 rank: int = 0, world: int = 1):
        self.names = sorted(names, key=lambda n: MEMBERS.meta(n).get("cost", 9))
        self.task, self.budget, self.seed, self.threads, self.log = task, budget, seed, threads, log
        self.given, self.store, self.rounds, self.calibrate = given or {}, store, rounds, calibrate
        self.refit, self.probe_epochs, self.rank, self.world = refit, probe_epochs, rank, world
        self.portfolio = Portfolio()
        self.outputs: dict[str, np.ndarray] = {}   # fitted member -> its validation outputs (N_valid, K)
        self.stacks: dict[str, Stacked] = {}       # what members that are read give their readers
        self.valid_outputs: np.ndarray | None = None  # the ensemble's on validation, as selected (before a refit)

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
        skipped = self.portfolio.select(self.outputs, data.valid_target, self.task, self.rounds, self.calibrate,
                                        data.valid_weights())
        if skipped:
            self.log(skipped, logging.WARNING)
        chosen = ", ".join(f"{n} {w:.2f}" for n, w in self.portfolio.weights.items())
        self.log(f"ensemble: {chosen}" + "".join(f"; {k.replace('_', ' ')} {v:.4f}"
                                                 for k, v in self.portfolio.calibration.items()))
        self.valid_outputs = self.portfolio.outputs(self.outputs, self.task)
        if self.refit and self.rank == 0:
            self._refit(data)
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

    def refit_estimate(self, names: list[str], data: FitData) -> float:
        """Seconds a refit of ``names`` on every labelled row may take: their first fits' seconds, scaled by the rows
        (an upper bound: a refit picks nothing on a path and stops early nowhere)."""
        seconds = {r["member"]: r.get("fit_seconds", 0.0) for r in self.portfolio.board}
        rows = len(data.train_set) + len(data.valid_set)
        first = sum(self.portfolio.members[n].refit_seconds(seconds.get(n, 0.0)) for n in names)
        return first * rows / max(len(data.train_set), 1)

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
                self._open_ended_start(name, member, data)
            why_not = self._why_not(member, data)
            if why_not is not None:
                self.portfolio.board.append({"member": name, "status": f"skipped: {why_not}"})
                self.log(f"member {name}: skipped ({why_not})")
                return
            done = self._fit_one(name, member, data)
            if done is None:  # its probe left it out
                self.portfolio.board.append({"member": name, "status": f"skipped: {member.probe.describe()}",
                                             "probe": f"{member.probe.gain:+.4f}: skipped"})
                self.log(f"member {name}: {member.probe.describe()}: skipped")
                return
            if self.store is not None and not member.saved_apart:
                self.store.save(name, done)
        self.portfolio.members[name], self.outputs[name] = done.member, done.outputs
        if done.stacked is not None:
            self.stacks[name] = done.stacked
        self.portfolio.board.append(done.row)
        self.log(f"member {name}: valid {self.task.primary_metric} {done.row['valid']:.4f} in {done.seconds:.1f} s")

    def _open_ended_start(self, name: str, member: Member, data: FitData) -> None:
        """Before a member whose fit has no end of its own (the network): the default time limit when none was
        given (under DDP every rank takes it: rank 0's clock decides, broadcast with the members), the seconds held
        back for a refit of the members fitted so far, the probe of its first epochs against those members (one
        process), and the other ranks' share of rank 0's members."""
        if self.refit and self.world == 1:  # with room for the estimate to be short (DDP: ranks stop alike)
            self.budget.reserve(1.2 * self.refit_estimate(list(self.portfolio.members), data))
        if (self.portfolio.members or self.world > 1) and self.budget.set_default() is not None:
            refit = f" + {self.budget.reserved:.0f} s for the refit" if self.budget.reserved else ""
            self.log(f"time limit: {self.budget.seconds:.0f} s for the whole fit (none given: max(120 s, 3x the "
                     f"{self.budget.elapsed():.0f} s before the {name}){refit}); the {name} trains for what is left")
        if self.probe_epochs and self.outputs and self.world == 1:
            member.probe = NetworkProbe(self.outputs, data.valid_target, self.task, self.rounds, self.probe_epochs,
                                        weight=data.valid_weights())
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

    def _fit_one(self, name: str, member: Member, data: FitData) -> Finished | None:
        """Fit one member (fed the stacked features of the members it reads); when another member reads it, also
        what it gives them (``Member.stacked``). None: its probe stopped it (``probe``)."""
        start = time.perf_counter()
        upstream = {r: self.stacks[r] for r in member.reads if r in self.stacks}
        member.fit(data, self.task, self.budget, upstream)
        if member.probe is not None and member.probe.kept is False:
            return None
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
        row = leaderboard_row(name, self.task, data.valid_target, outputs, seconds, per_row, len(data.train_set),
                              data.valid_weights())
        if member.probe is not None and member.probe.kept:
            row["probe"] = f"{member.probe.gain:+.4f}: kept"
        return Finished(member, outputs, mine, row, seconds)

    # --- refit on every labelled row ---------------------------------------------------------------------------------
    def _refit(self, data: FitData) -> None:
        """Refit the members the ensemble reads, and the members they read, on the training and validation rows,
        each with the settings its first fit picked (weights and temperatures stay as validation chose them). The
        members that read flat views: all of them, or, when the time limit has no room for their estimate or runs
        out during their refit, none; then the network, when it fits in what is left and trains all its epochs
        (each said in the log and the leaderboard). A member of weight 0 that reads a refitted one is dropped (its
        features changed under it)."""
        self.budget.reserve(0.0)  # what was held back for the refit is the refit's now
        names, members = self.portfolio.needed(), self.portfolio.members
        cannot = {n: why for n in names if (why := "it trains under DDP" if self.world > 1 and members[n].saved_apart
                                            else members[n].cannot_refit(data))}  # (rank 0 trains no network alone)
        views = [n for n in names if n not in cannot and not members[n].saved_apart]
        refitted = self._refit_all(views, data)
        if refitted is None:
            return
        for name in [n for n in names if n not in cannot and n not in views]:
            if self._fits([name], data):
                done, epochs = self._refit_one(name, data, {}, []), self.portfolio.members[name].result.restored_epoch
                if len(done.member.result.history) < epochs:  # the time limit stopped it short of the epochs kept
                    self._keep([name], "the time limit ran out during its refit")
                else:
                    refitted[name] = done
        for name, why in cannot.items():
            self._keep([name], f"it cannot refit: {why}", logging.INFO)
        self._replace(refitted, len(data.train_set) + len(data.valid_set))

    def _fits(self, names: list[str], data: FitData) -> bool:
        """Whether the refit of ``names`` fits in what is left of the time limit (else said)."""
        estimate = self.refit_estimate(names, data)
        if not names or self.budget.allows(estimate):
            return True
        self._keep(names, f"estimated {estimate:.0f} s, {self.budget.left():.0f} s of the time limit left")
        return False

    def _refit_all(self, names: list[str], data: FitData) -> dict[str, Finished] | None:
        """Refit ``names`` (in fit order, each fed the refitted features of those it reads; each saved to the run's
        store, or loaded from it on resume): all of them ({} when their estimate does not fit), or None when the
        time limit ran out during their refit (then every member keeps its first fit)."""
        if not self._fits(names, data):
            return {}
        refitted, stacks = {}, {}
        for name in names:
            done = self.store.load(name, refit=True) if self.store is not None else None
            if done is None:
                done = self._refit_one(name, data, stacks, names)
                if self.store is not None:
                    self.store.save(name, done, refit=True)
            refitted[name] = done
            if done.stacked is not None:
                stacks[name] = done.stacked
            if self.budget.exhausted():
                self._keep(names, "the time limit ran out during the refit")
                return None
        return refitted

    def _replace(self, refitted: dict[str, Finished], rows: int) -> None:
        """Put the refitted members in place of their first fits; drop the members that read one of them."""
        for row in self.portfolio.board:
            name = row["member"]
            if name in refitted:
                self.portfolio.members[name] = refitted[name].member
                row.update(rows=rows, refit="yes", refit_seconds=round(refitted[name].seconds, 2))
            elif name in self.portfolio.members and set(self.portfolio.members[name].fitted_reads()) & set(refitted):
                reads = ", ".join(sorted(set(self.portfolio.members.pop(name).fitted_reads()) & set(refitted)))
                row.update(status=f"dropped after the refit: weight 0, it read {reads} as first fitted", refit="no")
            elif row["status"] == "fitted" and "refit" not in row:
                row["refit"] = "no: weight 0"
        if refitted:
            self.log(f"refit on all {rows:,} labelled rows: {', '.join(refitted)} in "
                     f"{sum(d.seconds for d in refitted.values()):.1f} s (the validation scores are the first fits')")

    def _refit_one(self, name: str, data: FitData, stacks: dict[str, Stacked], names: list[str]) -> Finished:
        member, start = self.portfolio.members[name], time.perf_counter()
        upstream = {r: stacks[r] for r in member.fitted_reads()}
        new = member.refit(data, self.task, self.budget, upstream)
        readers = [n for n in names if name in self.portfolio.members[n].fitted_reads()]
        mine = self.stacks[name].joined() if readers else None
        empty = np.zeros((0, self.outputs[name].shape[1]), dtype=np.float32)
        return Finished(new, empty, mine, {}, time.perf_counter() - start)

    def _keep(self, names: list[str], why: str, level: int = logging.WARNING) -> None:
        """Say that ``names`` keep their first fit (on the training rows alone), and why."""
        for row in self.portfolio.board:
            if row["member"] in names:
                row["refit"] = f"no: {why}"
        if names:
            self.log(f"refit: {', '.join(names)} kept as fitted on the training rows ({why})", level)

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
