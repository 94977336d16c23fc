"""The interface every portfolio member implements, the fused network included (AutoGluon's ``AbstractModel``, in
small): what it learns, what it reads, what it may cost, fit under the time left, logits for any rows, its state as
JSON + arrays, and its graph form for ONNX. Adding a member is one file and one registration line::

    @MEMBERS.register("my_member", cost=2)     # cost: the rank among members (cheapest fit first; the network last)
    class MyMember(Learner): ...               # a ``Learner`` when it reads the flat views (most do)

The portfolio (``fit.PortfolioFit``) fits the members named, in cost order, each told what is left of the fit's
``TimeBudget``; then weighs them on validation (``ensemble.Portfolio``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from ..core.processor import Processor
from ..data.dataset import EncodedSplit, TableDataset, make_loader
from ..errors import ConfigError
from ..tasks.base import Task
from .budget import TimeBudget
from .flat import FlatInputs, concat, flat_batch

LABEL_KINDS = frozenset({"logit", "softmax", "sigmoids", "value"})  # the output kinds of the labelled tasks


@dataclass
class FitData:
    """What members learn from: the prepared training and validation sets (the training one augments, where a
    processor does), their flat views (computed once, when a member first asks), and the pipeline's ``dataset`` and
    ``processors`` that prepare rows as prediction does."""

    train_set: TableDataset
    valid_set: TableDataset
    dataset: Callable[[EncodedSplit], TableDataset]
    processors: dict[str, Processor]
    batch_rows: int = 512

    @property
    def target(self) -> Tensor:
        return self.train_set.target

    @property
    def valid_target(self) -> Tensor:
        return self.valid_set.target

    @property
    def weight(self) -> Tensor | None:
        """(N,) the training rows' weights (None: 1 each)."""
        return self.train_set.weight

    @property
    def valid_weight(self) -> Tensor | None:
        return self.valid_set.weight

    @property
    def every_weight(self) -> Tensor | None:
        """The weights of ``every``'s rows: the training rows' then the validation rows' (None: 1 each)."""
        if self.weight is None and self.valid_weight is None:
            return None
        return torch.cat([torch.ones(len(s)) if s.weight is None else s.weight.float()
                          for s in (self.train_set, self.valid_set)])

    @cached_property
    def train(self) -> FlatInputs:
        return replace(concat(self.rows(self.train_set)), weight=self.weight)

    @cached_property
    def valid(self) -> FlatInputs:
        return replace(concat(self.rows(self.valid_set)), weight=self.valid_weight)

    def valid_weights(self) -> np.ndarray | None:
        """The validation rows' weights as numpy float64 (None: 1 each), for scores and selection."""
        return None if self.valid_weight is None else self.valid_weight.double().numpy()

    @cached_property
    def every(self) -> FlatInputs:
        """The training rows then the validation rows: what a refit learns from."""
        return concat([self.train, self.valid])

    @property
    def every_target(self) -> Tensor:
        return torch.cat([self.target, self.valid_target])

    def rows(self, dataset: TableDataset, views: bool = True, batch_rows: int | None = None) -> Iterator[FlatInputs]:
        """Batches of a set's rows prepared as for prediction (no augmentation): their flat views (with ``views``)
        and their prepared inputs."""
        for batch in make_loader(self.dataset(dataset.split), batch_rows or self.batch_rows, shuffle=False):
            yield rows_of(self.processors, batch.inputs, batch.present, views)


def rows_of(processors: dict[str, Processor], inputs: dict[str, Tensor], present: dict[str, Tensor],
            views: bool = True) -> FlatInputs:
    """One batch as members read it: flat views (with ``views``: the learners read them) and the prepared inputs
    (the network reads those)."""
    flat = flat_batch(processors, inputs, present) if views else FlatInputs({}, dict(present))
    flat.prepared = inputs
    return flat


class Stacked:
    """A member's logits as features for another: out-of-fold on the training rows, its plain logits on the
    validation rows (None for a refit on every row: nothing is held out)."""

    def __init__(self, train: np.ndarray, valid: np.ndarray | None):
        self.train, self.valid = train, valid

    def joined(self) -> "Stacked":
        """What a refit reads on every labelled row: the out-of-fold training rows, then the validation rows. No
        model scored a row it learned from, so no fold needs fitting again (with the warm start, debian's n-gram
        member refits in 53 s instead of 173 s)."""
        return Stacked(np.concatenate([self.train, self.valid]), None)


class Member:
    """Base class. Class attributes declare what the portfolio may ask before fitting:

    ``name``: its registered name; ``reads``: the members whose stacked features it takes (they fit first);
    ``output_kinds``: the task output kinds it learns (``Task.output_kind``); ``reads_views``: it reads the inputs'
    flat views (else the prepared inputs themselves: the network); ``saved_apart``: its state is the bundle's model
    weights (the network), not the portfolio's files; ``open_ended``: its fit has no end of its own but early
    stopping (the network), so with no time limit given the budget's default applies when it starts.
    """

    name: ClassVar[str]
    reads: ClassVar[tuple[str, ...]] = ()
    output_kinds: ClassVar[frozenset[str]] = LABEL_KINDS
    reads_views: ClassVar[bool] = True
    saved_apart: ClassVar[bool] = False
    open_ended: ClassVar[bool] = False
    probe: Any = None  # an open-ended member's judge of its first epochs (``probe.NetworkProbe``), set before its fit

    def supports(self, task: Task) -> str | None:
        """None if this member learns ``task``'s outputs, else why not."""
        return None if task.output_kind in self.output_kinds else f"does not learn {task.name} outputs"

    def applies(self, data: FitData) -> str | None:
        """None if this member can learn from these inputs, else why not (e.g. "no frozen embeddings")."""
        return None

    def cost_hint(self, data: FitData, task: Task, threads: int) -> float:
        """Estimated seconds of ``fit`` (``rates``): orders nothing (the registry's cost rank does) but skips a member
        that cannot start in what is left."""
        return 0.0

    def fit(self, data: FitData, task: Task, budget: TimeBudget, upstream: dict[str, Stacked]) -> "Member":
        """Learn from ``data`` (fed the stacked features of the members it ``reads``), stopping when ``budget`` runs
        out with the best state reached."""
        raise NotImplementedError

    def cannot_refit(self, data: FitData) -> str | None:
        """Why this fitted member cannot ``refit`` on ``data`` (None: it can)."""
        return None

    def refit_seconds(self, seconds: float) -> float:
        """What its refit may take on as many rows as its first fit, which took ``seconds``."""
        return seconds

    def refit(self, data: FitData, task: Task, budget: TimeBudget, upstream: dict[str, Stacked]) -> "Member":
        """A new member with this fitted one's picked settings (penalty, rounds, k), learned from every labelled row
        (``data.every``: no validation split left to pick on), fed ``upstream``'s features on those rows."""
        raise NotImplementedError

    def logits(self, rows: FlatInputs, absent: frozenset[str] = frozenset(),
               upstream: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """(N, out_dim) logits for ``rows`` (inputs in ``absent`` treated as missing in every row)."""
        raise NotImplementedError

    def valid_logits(self, data: FitData, upstream: dict[str, np.ndarray]) -> np.ndarray:
        """The fitted member's logits on the validation rows."""
        return self.logits(data.valid, upstream=upstream)

    def stacked(self, data: FitData, task: Task) -> Stacked:
        """What this fitted member gives the members that read it."""
        raise ConfigError(f"member {self.name!r} gives no features to other members")

    def stacked_features(self, rows: FlatInputs, absent: frozenset[str] = frozenset()) -> np.ndarray:
        """(N, F) what ``stacked`` gives on new rows."""
        raise ConfigError(f"member {self.name!r} gives no features to other members")

    def module(self) -> nn.Module:
        """This fitted member's ``logits`` (no absent inputs) as a torch module, ``forward(flat, upstream) -> (N,
        out_dim)`` float32, which ONNX export traces (``estimators.onnx``)."""
        raise ConfigError(f"member {self.name!r} has no graph form to export: leave it out "
                          f"(--exclude-members {self.name}) or predict with the torch backend")

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON: settings and fitted values, arrays): what a bundle stores."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> "Member":
        raise NotImplementedError

    def fitted_reads(self) -> list[str]:
        """The members whose stacked features this fitted member reads."""
        return []

    def use(self, device: str, precision: str, graph: Any = None) -> None:
        """Predict on ``device`` with the ``precision`` autocast, or with an exported ``graph`` in its place (a
        member that runs a torch model; the others run on the CPU as they are)."""

