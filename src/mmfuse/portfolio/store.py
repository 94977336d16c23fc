"""Finished members of an interrupted fit, kept for ``--resume``: each member is saved as soon as it is fitted (its
state, its validation outputs, its out-of-fold and validation logits when another member reads them, its leaderboard
row and fit seconds), under the run's checkpoint folder with the run's fingerprint (``io.checkpoint``). A resumed
fit loads it instead of fitting it again, so it ends with the same members, bit for bit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io.checkpoint import check_fingerprint, load_member, save_member
from ..registry import MEMBERS
from .member import Member, Stacked

log = logging.getLogger("mmfuse")
REFIT = ".refit"  # the folder suffix of a member's refit on every row


@dataclass
class Finished:
    """A fitted member as the portfolio keeps it while fitting."""

    member: Member
    outputs: np.ndarray                 # validation outputs (N_valid, K); a refit: none (0, K)
    stacked: Stacked | None             # out-of-fold / validation logits, where another member reads them
    row: dict[str, Any]                 # its leaderboard row
    seconds: float


@dataclass(frozen=True)
class MemberStore:
    folder: Path
    fingerprint: dict[str, str]
    resume: bool

    def load(self, name: str, refit: bool = False) -> Finished | None:
        """The member an interrupted fit saved (resuming only; ``refit``: its refit on every row), or None."""
        saved = load_member(self.folder, name + REFIT * refit) if self.resume else None
        if saved is None:
            return None
        arrays, state = saved
        check_fingerprint(state, self.fingerprint, self.folder)
        own = {k[len("learner/"):]: v for k, v in arrays.items() if k.startswith("learner/")}
        stacked = Stacked(arrays["stacked.train"], arrays.get("stacked.valid")) if "stacked.train" in arrays else None
        log.warning(f"resume: member {name}{' refit' * refit} as fitted before the interruption ({self.folder})")
        return Finished(MEMBERS.get(name).from_state(state["learner"], own), arrays["outputs"], stacked,
                        state["row"], state["seconds"])

    def save(self, name: str, done: Finished, refit: bool = False) -> None:
        meta, own = done.member.state()
        arrays = {f"learner/{k}": v for k, v in own.items()} | {"outputs": done.outputs}
        if done.stacked is not None:
            arrays |= {"stacked.train": done.stacked.train}
            arrays |= {} if done.stacked.valid is None else {"stacked.valid": done.stacked.valid}
        save_member(self.folder, name + REFIT * refit, arrays, {"fingerprint": self.fingerprint, "learner": meta,
                                                                "row": done.row, "seconds": done.seconds})
