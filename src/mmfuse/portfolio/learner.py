"""Members that learn from the inputs' flat views (the linear models, LightGBM, k-nearest neighbours): the ``Member``
interface over ``learn`` (flat training and validation rows, targets) and ``logits`` (flat rows).

Logits are what the task turns into outputs (``Task.outputs``): (N, out_dim), e.g. one logit for binary, K for
multiclass and multilabel, the standardised value for regression. ``absent`` inputs are treated as missing in every
row (each learner documents how), which is how robustness curves and per-input contributions reach the members.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..tasks.base import Task
from .budget import TimeBudget
from .flat import FlatInputs
from .member import FitData, Member, Stacked
from .rates import at_threads


class Learner(Member):
    """Base class. Constructor arguments are the learner's settings (kept under their own names, JSON values);
    fitted state lives in ``arrays`` (name -> numpy array) and ``fitted`` (JSON), both written by ``learn``."""

    def __init__(self, seed: int = 0, threads: int = 1):
        self.seed, self.threads = seed, threads
        self.arrays: dict[str, np.ndarray] = {}
        self.fitted: dict[str, Any] = {}

    def applies(self, data: FitData) -> str | None:
        return self.missing_views(data.train)

    def missing_views(self, flat: FlatInputs) -> str | None:
        """None if this learner can learn from these views, else why not (e.g. "no frozen embeddings")."""
        return None

    def cost_hint(self, data: FitData, task: Task, threads: int) -> float:
        return at_threads(self.estimate_seconds(data.train, task), threads)

    def estimate_seconds(self, flat: FlatInputs, task: Task) -> float:
        """A rough cost of ``learn`` on these rows at the reference thread count (``rates``)."""
        raise NotImplementedError

    def fit(self, data: FitData, task: Task, budget: TimeBudget, upstream: dict[str, Stacked]) -> "Learner":
        return self.learn(data.train, data.target, task, data.valid, data.valid_target, upstream, budget.deadline())

    def refit(self, data: FitData, task: Task, budget: TimeBudget, upstream: dict[str, Stacked]) -> "Learner":
        return type(self)(**self.refit_settings()).learn(data.every, data.every_target, task, upstream=upstream,
                                                         deadline=budget.deadline())

    def learn(self, train: FlatInputs, target: Tensor, task: Task, valid: FlatInputs | None = None,
              valid_target: Tensor | None = None, upstream: dict[str, Stacked] | None = None,
              deadline: float | None = None) -> "Learner":
        """Learn from the training rows; settings are picked on ``valid`` when given (else the constructor's);
        stops at ``deadline`` (a ``time.perf_counter()`` reading; None: none) with the best state reached."""
        raise NotImplementedError

    def logits(self, flat: FlatInputs, absent: frozenset[str] = frozenset(),
               upstream: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """(N, out_dim) logits for the rows of ``flat``."""
        raise NotImplementedError

    def fitted_reads(self) -> list[str]:
        return list(self.fitted.get("reads", []))

    def stacked(self, data: FitData, task: Task) -> Stacked:
        return self.stack(data.train, data.target, task, data.valid, data.valid_target)

    def stack(self, train: FlatInputs, target: Tensor, task: Task, valid: FlatInputs, valid_target: Tensor) -> Stacked:
        """What this fitted member gives the members that read it, on the training rows (out-of-fold) and on
        ``valid``: its logits, unless a learner gives more (``stacked_features``)."""
        return Stacked(self.out_of_fold(train, target, task), self.logits(valid))

    def out_of_fold(self, train: FlatInputs, target: Tensor, task: Task) -> np.ndarray:
        """(N, out_dim) logits for every training row from a copy fitted on the other folds (``out_of_fold``)."""
        return out_of_fold(self, train, target, task)

    def stacked_features(self, flat: FlatInputs, absent: frozenset[str] = frozenset()) -> np.ndarray:
        """(N, F) what ``stack`` gives on new rows."""
        return self.logits(flat, absent)

    def stacked_module(self) -> nn.Module:
        """``stacked_features`` as a torch module ``forward(flat) -> (N, F)``, for ONNX export."""
        return self.module()

    def refit_settings(self) -> dict[str, Any]:
        """The constructor settings that reproduce this fit without a validation split (e.g. the picked C): what
        ``refit`` and the out-of-fold copies learn with."""
        return self.get_params()

    def fold_copy(self) -> "Learner":
        """An unfitted copy with this fit's picked settings, for out-of-fold logits. It must not start from this
        fit's solution: that saw the held-out fold, so its logits would be better on the training rows than on new
        ones, and a member stacked on them would trust them too much."""
        return type(self)(**self.refit_settings())

    # --- state ----------------------------------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in inspect.signature(type(self)).parameters}

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON: settings and fitted values, arrays): what a bundle stores."""
        return {"params": self.get_params(), "fitted": self.fitted}, self.arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> "Learner":
        learner = cls(**meta["params"])
        learner.fitted, learner.arrays = dict(meta["fitted"]), dict(arrays)
        learner._setup()
        return learner

    def _setup(self) -> None:
        """Rebuild helpers that are not arrays or JSON (a LightGBM booster from its text) after loading."""


def folds_of(rows: int, seed: int, folds: int = 5) -> list[tuple[Tensor, Tensor]]:
    """The seeded folds of ``rows`` training rows: (held-out positions, the other positions) per fold."""
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(seed))
    return [(part, order[~torch.isin(order, part)]) for part in order.tensor_split(folds)]


def out_of_fold(learner: Learner, train: FlatInputs, target: Tensor, task: Task) -> np.ndarray:
    """Logits (N, out_dim) for every training row from a copy fitted on the other folds (the learner's picked
    settings, seeded folds)."""
    out = None
    for part, rest in folds_of(len(train), learner.seed):
        copy = learner.fold_copy().learn(train.take(rest), target[rest], task)
        logits = copy.logits(train.take(part))
        if out is None:
            out = np.zeros((len(train), logits.shape[1]), dtype=np.float32)
        out[part.numpy()] = logits
    return out
