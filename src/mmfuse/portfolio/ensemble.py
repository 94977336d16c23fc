"""The fitted portfolio: its members, their ensemble weights and the calibration, with what each cost and scored.

    portfolio = PortfolioFit(names, task, budget, ...).run(data)        # fit.py: the members, then select
    portfolio.select(outputs_on_valid, y_valid, task, rounds, calibrate)
    portfolio.outputs(member_outputs, task)                             # weighted, calibrated (N, K)

Saved as ``portfolio.json`` (settings, fitted values, LightGBM text, weights, leaderboard) and
``portfolio.safetensors`` (arrays); a member saved apart (the network) keeps its weights in the bundle's model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor

from ..errors import ConfigError
from ..registry import MEMBERS
from ..tasks.base import Task
from .calibration import MIN_ROWS, apply_temperature, expected_calibration_error, fit_temperatures
from .member import Member
from .selection import combine, greedy_selection


@dataclass
class Portfolio:
    """Fitted members by name in fit order, weights (summing to 1), temperatures (empty: none), one leaderboard row
    per member tried, the validation figures of the ensemble; ``lone``: one member saved apart, as trained
    (``alone``)."""

    members: dict[str, Member] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    temperatures: list[float] = field(default_factory=list)
    board: list[dict[str, Any]] = field(default_factory=list)
    calibration: dict[str, float] = field(default_factory=dict)
    lone: bool = False

    @classmethod
    def alone(cls, name: str, member: Member) -> "Portfolio":
        """One member whose outputs are the model's, as trained (no selection, no calibration, nothing saved
        beside the bundle's model)."""
        return cls({name: member}, {name: 1.0}, [], [{"member": name, "status": "fitted", "weight": 1.0}], {}, True)

    def select(self, outputs: dict[str, np.ndarray], target: Tensor, task: Task, rounds: int,
               calibrate: bool, weight: np.ndarray | None = None) -> str | None:
        """Weights by greedy selection on the validation outputs of every fitted member (the network's included),
        then temperatures fitted on the weighted outputs (classification, with ``calibrate``, on at least
        ``MIN_ROWS`` rows), each row counted with its ``weight`` (None: 1). Returns why calibration was skipped,
        where it was asked for, else None."""
        self.weights = greedy_selection(outputs, target, task, rounds, weight) if len(outputs) > 1 else \
            dict.fromkeys(outputs, 1.0)
        for row in self.board:
            row["weight"] = self.weights.get(row["member"], 0.0)
        mixed = combine(outputs, self.weights)
        self.calibration = {"valid_" + task.primary_metric: task.score(target, mixed, weight)}
        if not task.has_probabilities or not calibrate:
            return None
        if len(target) < MIN_ROWS:
            return (f"not calibrated: the validation split has {len(target)} rows, fewer than the {MIN_ROWS} that "
                    "temperatures need (pass a larger --valid table)")
        per_label = task.independent_outputs
        before = expected_calibration_error(mixed, target, per_label=per_label)
        self.temperatures = fit_temperatures(mixed, target, per_label=per_label, weight=weight)
        after = expected_calibration_error(apply_temperature(mixed, self.temperatures, per_label=per_label), target,
                                           per_label=per_label)
        self.calibration.update({"valid_ece_before": before, "valid_ece_after": after})
        return None

    # --- prediction ----------------------------------------------------------------------------------------------
    def needed(self) -> list[str]:
        """The members whose outputs the ensemble reads (weight > 0), with the members they read, in fit order."""
        return self.with_reads(list(self.weights))

    def one(self, name: str) -> list[str]:
        """``[name]`` when it is a fitted member (what predicting with it alone needs), else a one-line error."""
        if name not in self.fitted():
            raise ConfigError(f"member {name!r} is not in this model; its members: {', '.join(self.fitted())}")
        return [name]

    def with_reads(self, names: list[str]) -> list[str]:
        """``names`` and the members they read, in fit order."""
        wanted = set(names)
        for name in names:
            if name in self.members:
                wanted |= set(self.members[name].fitted_reads())
        return [n for n in self.members if n in wanted]

    def fitted(self) -> list[str]:
        """The fitted members' names, in fit order."""
        return [r["member"] for r in self.board if r["status"] == "fitted"]

    def outputs(self, member_outputs: dict[str, np.ndarray], task: Task) -> np.ndarray:
        """The ensemble's outputs: weighted average, then the temperatures."""
        mixed = combine(member_outputs, self.weights)
        return apply_temperature(mixed, self.temperatures, per_label=task.independent_outputs) if self.temperatures else mixed

    def score_rows(self, outputs: dict[str, np.ndarray], target: Tensor, task: Task, split: str) -> None:
        """Add each member's score on another split (e.g. test) to its leaderboard row."""
        for row in self.board:
            if row["member"] in outputs:
                row[split] = task.score(target, outputs[row["member"]])

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
        for name, member in self.members.items():
            if member.saved_apart:
                continue
            meta["members"][name], member_arrays = member.state()
            arrays.update({f"{name}/{k}": np.ascontiguousarray(v) for k, v in member_arrays.items()})
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                   apart: dict[str, Member] | None = None) -> "Portfolio":
        """The portfolio ``state`` saved; ``apart``: the members saved elsewhere (the network, with the bundle's
        model), included where the leaderboard says they were fitted."""
        members = {}
        for name, state in meta["members"].items():
            prefix = f"{name}/"
            members[name] = MEMBERS.get(name).from_state(
                state, {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
        fitted = {r["member"] for r in meta["leaderboard"] if r["status"] == "fitted"}
        members |= {name: member for name, member in (apart or {}).items() if name in fitted}
        portfolio = cls(members, dict(meta["weights"]), list(meta["temperatures"]), list(meta["leaderboard"]),
                        dict(meta.get("calibration", {})))
        unknown = [n for n in portfolio.weights if n not in members and apart is not None]
        if unknown:
            raise ValueError(f"the weights name {unknown[0]!r}, which is not a fitted member")
        return portfolio


def leaderboard_row(name: str, task: Task, target: Tensor, outputs: np.ndarray, seconds: float, predict_ms: float,
                    rows: int, weight: np.ndarray | None = None) -> dict:
    """A fitted member's leaderboard row (``rows``: the rows it learned from; ``weight``: the validation rows')."""
    return {"member": name, "status": "fitted", "valid": task.score(target, outputs, weight),
            "fit_seconds": round(seconds, 2), "predict_ms_per_row": round(predict_ms, 4), "rows": rows}
