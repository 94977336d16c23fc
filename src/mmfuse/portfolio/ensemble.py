"""The fitted portfolio: its members, their ensemble weights and the calibration, with what each cost and scored.

    portfolio = Portfolio.fit_learners(names, train, y, valid, y_valid, task, budget, seed, threads, log)
    portfolio.select(outputs_on_valid, y_valid, task, rounds, calibrate)   # the network's outputs included
    portfolio.outputs(member_outputs)                                       # weighted, calibrated (N, K)

The fused network is trained by the estimator (it owns checkpoints, DDP and the training loop); here it is one more
name with outputs. Saved as ``portfolio.json`` (settings, fitted values, LightGBM text, weights, leaderboard) and
``portfolio.safetensors`` (arrays).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from ..config import NETWORK
from ..core.deadline import check_deadline
from ..registry import LEARNERS
from ..tasks.base import Task
from .calibration import MIN_ROWS, apply_temperature, expected_calibration_error, fit_temperatures
from .flat import FlatInputs
from .learner import Learner, Stacked
from .selection import combine, greedy_selection
from .store import Finished, MemberStore


class Budget:
    """Seconds left of a fit's time limit (None: no limit)."""

    def __init__(self, seconds: float | None):
        self.seconds, self.start = seconds, time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float | None:
        return None if self.seconds is None else self.seconds - self.elapsed()

    def default_for_network(self, floor: float = 120.0, factor: float = 3.0) -> float | None:
        """With no time limit given, a portfolio's network gets what is left of max(``floor``, ``factor`` x the
        seconds the fit took before it): the cheap members have scored by then, so the network may take a few times
        their cost but not ten. Returns the limit set (None: one was given)."""
        if self.seconds is not None:
            return None
        self.seconds = max(floor, factor * self.elapsed())
        return self.seconds

    def credit(self, seconds: float) -> None:
        """Count ``seconds`` spent before (by a fit this one resumes) as elapsed."""
        self.start -= seconds

    def allows(self, cost: float) -> bool:
        left = self.left()
        return left is None or cost <= left


@dataclass
class Portfolio:
    """Members by name (the network has no entry: the estimator holds it), weights (summing to 1), temperatures
    (empty: none) and one leaderboard row per member tried."""

    members: dict[str, Learner] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    temperatures: list[float] = field(default_factory=list)
    board: list[dict[str, Any]] = field(default_factory=list)
    calibration: dict[str, float] = field(default_factory=dict)

    # --- fitting -------------------------------------------------------------------------------------------------
    @classmethod
    def fit_learners(cls, names: list[str], train: FlatInputs, target: Tensor, valid: FlatInputs,
                     valid_target: Tensor, task: Task, budget: Budget, seed: int, threads: int,
                     log: Callable[[str], None], store: MemberStore | None = None) -> tuple["Portfolio", dict[str, np.ndarray]]:
        """Fit the cheap members named (cheapest first, each only if its estimated cost fits what is left of the
        budget; with a ``store``, each saved once fitted, or loaded if an interrupted fit saved it); returns the
        portfolio and each fitted member's validation outputs."""
        portfolio, outputs, stacked = cls(), {}, {}
        for name in sorted((n for n in names if n != NETWORK), key=lambda n: LEARNERS.meta(n).get("cost", 9)):
            done = store.load(name) if store is not None else None
            if done is not None:
                budget.credit(done.seconds)  # a resumed fit gets what is left of the budget
            else:
                learner = LEARNERS.get(name)(seed=seed, threads=threads)
                why_not = learner.applies(train)
                if why_not is None and any(r in names and r not in portfolio.members for r in learner.reads):
                    why_not = f"needs {', '.join(learner.reads)}, which did not fit"
                cost = learner.estimate_seconds(train, task)
                if why_not is None and not budget.allows(cost):
                    why_not = f"estimated {cost:.0f} s, {budget.left():.0f} s of the time limit left"
                if why_not is not None:
                    portfolio.board.append({"member": name, "status": f"skipped: {why_not}"})
                    log(f"member {name}: skipped ({why_not})")
                    continue
                done = _fit_one(learner, train, target, task, valid, valid_target, stacked,
                                reads_me=any(name in LEARNERS.get(n).reads for n in names if n != NETWORK))
                if store is not None:
                    store.save(name, done)
            portfolio.members[name], outputs[name] = done.learner, done.outputs
            if done.stacked is not None:
                stacked[name] = done.stacked
            portfolio.board.append(done.row)
            log(f"member {name}: valid {task.primary_metric} {done.row['valid']:.4f} in {done.seconds:.1f} s")
        return portfolio, outputs

    def add_row(self, name: str, task: Task, target: Tensor, outputs: np.ndarray, seconds: float,
                predict_ms: float) -> None:
        self.board.append(_row(name, task, target, outputs, seconds, predict_ms))

    def select(self, outputs: dict[str, np.ndarray], target: Tensor, task: Task, rounds: int,
               calibrate: bool) -> str | None:
        """Weights by greedy selection on the validation outputs of every fitted member (the network's included),
        then temperatures fitted on the weighted outputs (classification, with ``calibrate``, on at least
        ``MIN_ROWS`` rows). Returns why calibration was skipped, where it was asked for, else None."""
        self.weights = greedy_selection(outputs, target, task, rounds) if len(outputs) > 1 else \
            dict.fromkeys(outputs, 1.0)
        for row in self.board:
            row["weight"] = self.weights.get(row["member"], 0.0)
        mixed = combine(outputs, self.weights)
        self.calibration = {"valid_" + task.primary_metric: task.metrics(target, mixed)[task.primary_metric]}
        if not task.has_probabilities or not calibrate:
            return None
        if len(target) < MIN_ROWS:
            return (f"not calibrated: the validation split has {len(target)} rows, fewer than the {MIN_ROWS} that "
                    "temperatures need (pass a larger --valid table)")
        per_label = task.independent_outputs
        before = expected_calibration_error(mixed, target, per_label=per_label)
        self.temperatures = fit_temperatures(mixed, target, per_label=per_label)
        after = expected_calibration_error(apply_temperature(mixed, self.temperatures, per_label=per_label), target,
                                           per_label=per_label)
        self.calibration.update({"valid_ece_before": before, "valid_ece_after": after})
        return None

    # --- prediction ----------------------------------------------------------------------------------------------
    def needed(self) -> list[str]:
        """The members whose outputs the ensemble reads (weight > 0), with the members they read, in fit order."""
        return self._with_reads(list(self.weights))

    def _with_reads(self, names: list[str]) -> list[str]:
        """``names`` and the cheap members they read, in fit order (the network last)."""
        wanted = set(names)
        for name in names:
            if name in self.members:
                wanted |= set(self.members[name].fitted.get("reads", []))
        return [n for n in [*self.members, NETWORK] if n in wanted]

    def member_outputs(self, names: list[str], flat: FlatInputs, task: Task,
                       absent: frozenset[str] = frozenset()) -> dict[str, np.ndarray]:
        """Outputs (N, K) of the cheap members named, each fed the stacked features of the members it reads."""
        logits, fed = {}, {}
        for name in (n for n in self._with_reads(names) if n in self.members):
            check_deadline()  # a served request's time limit, between members
            learner, reads = self.members[name], self.members[name].fitted.get("reads", [])
            for r in reads:
                if r not in fed:
                    fed[r] = self.members[r].stacked_features(flat, absent)
            logits[name] = learner.logits(flat, absent, {r: fed[r] for r in reads})
        return {n: task.outputs(torch.from_numpy(logits[n])) for n in names if n in logits}

    def outputs(self, member_outputs: dict[str, np.ndarray], task: Task) -> np.ndarray:
        """The ensemble's outputs: weighted average, then the temperatures."""
        mixed = combine(member_outputs, self.weights)
        return apply_temperature(mixed, self.temperatures, per_label=task.independent_outputs) if self.temperatures else mixed

    def score_rows(self, outputs: dict[str, np.ndarray], target: Tensor, task: Task, split: str) -> None:
        """Add each member's score on another split (e.g. test) to its leaderboard row."""
        for row in self.board:
            if row["member"] in outputs:
                row[split] = task.metrics(target, outputs[row["member"]])[task.primary_metric]

    def fingerprint(self) -> str:
        """SHA-256 of what predicts: the members (settings, fitted values, arrays), weights and temperatures (the
        leaderboard's timings left out)."""
        meta, arrays = self.state()
        digest = hashlib.sha256(json.dumps({k: meta[k] for k in ("members", "weights", "temperatures")},
                                           sort_keys=True).encode())
        for key in sorted(arrays):
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(arrays[key]).tobytes())
        return digest.hexdigest()

    # --- state ---------------------------------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {"weights": self.weights, "temperatures": self.temperatures, "leaderboard": self.board,
                "calibration": self.calibration, "members": {}}
        arrays = {}
        for name, learner in self.members.items():
            meta["members"][name], member_arrays = learner.state()
            arrays.update({f"{name}/{k}": np.ascontiguousarray(v) for k, v in member_arrays.items()})
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> "Portfolio":
        members = {}
        for name, state in meta["members"].items():
            prefix = f"{name}/"
            members[name] = LEARNERS.get(name).from_state(
                state, {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
        return cls(members, dict(meta["weights"]), list(meta["temperatures"]), list(meta["leaderboard"]),
                   dict(meta.get("calibration", {})))



def _fit_one(learner: Learner, train: FlatInputs, target: Tensor, task: Task, valid: FlatInputs, valid_target: Tensor,
             stacked: dict[str, Stacked], reads_me: bool) -> Finished:
    """Fit one member (fed the stacked features of the members it reads); with ``reads_me``, also what it gives
    the members that read it (``Learner.stack``)."""
    start = time.perf_counter()
    upstream = {r: stacked[r] for r in learner.reads if r in stacked}
    learner.fit(train, target, task, valid, valid_target, upstream)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    outputs = task.outputs(torch.from_numpy(learner.logits(valid, upstream={r: s.valid for r, s in upstream.items()})))
    per_row = 1000 * (time.perf_counter() - start) / max(len(valid), 1)
    mine = None
    if reads_me:
        start = time.perf_counter()
        mine = learner.stack(train, target, task, valid, valid_target)
        seconds += time.perf_counter() - start
    return Finished(learner, outputs, mine, _row(learner.name, task, valid_target, outputs, seconds, per_row), seconds)


def _row(name: str, task: Task, target: Tensor, outputs: np.ndarray, seconds: float, predict_ms: float) -> dict:
    """A fitted member's leaderboard row."""
    return {"member": name, "status": "fitted", "valid": task.metrics(target, outputs)[task.primary_metric],
            "fit_seconds": round(seconds, 2), "predict_ms_per_row": round(predict_ms, 4)}
