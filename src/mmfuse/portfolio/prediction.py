"""How a fitted portfolio predicts, batch by batch over a prepared split: each path gives the members' outputs for one
batch; ``member_outputs`` runs a path over the batches.

- ``EagerPath``: every member in this process (the network with PyTorch, or its exported graph in its place).
- ``GraphPath``: an exported portfolio graph (ONNX Runtime) that computes the members it holds and the ensemble in
  one run; with inputs absent, only the graph's network outputs stand (presence carries the absence) and the members
  that read flat views run eagerly (an absent input is their training mean, not a missing row).

    outputs = member_outputs(EagerPath(portfolio, task), batches, ["lightgbm", "network"])
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch
from torch import Tensor

from ..core.deadline import check_deadline
from ..core.processor import Processor
from ..data.dataset import Batch
from ..tasks.base import Task
from .ensemble import Portfolio
from .flat import FlatInputs, named_views
from .member import rows_of

ENSEMBLE = "ensemble"  # a graph's own combination of its members, among a path's outputs


class EagerPath:
    """The members run here, each fed the stacked features of the members it reads."""

    def __init__(self, portfolio: Portfolio, task: Task):
        self.portfolio, self.task = portfolio, task

    def reads_views(self, names: list[str]) -> bool:
        """Whether these members (with those they read) need the batches' flat views."""
        return any(self.portfolio.members[n].reads_views for n in self.portfolio.with_reads(names))

    def batch(self, rows: FlatInputs, names: list[str], absent: frozenset[str]) -> dict[str, np.ndarray]:
        """Member name -> its outputs (B, K) for one batch."""
        members, logits, fed = self.portfolio.members, {}, {}
        for name in self.portfolio.with_reads(names):
            reads = members[name].fitted_reads()
            for r in reads:
                if r not in fed:
                    fed[r] = members[r].stacked_features(rows, absent)
            logits[name] = members[name].logits(rows, absent, {r: fed[r] for r in reads})
        return {n: self.task.outputs(torch.from_numpy(logits[n])) for n in names if n in logits}


class GraphPath:
    """An exported portfolio graph (``nn.onnx_runtime.OnnxNetwork`` with members), the rest eager."""

    def __init__(self, graph: object, eager: EagerPath):
        self.graph, self.eager = graph, eager

    def reads_views(self, names: list[str]) -> bool:
        return True  # the graph takes every input's flat views

    def batch(self, rows: FlatInputs, names: list[str], absent: frozenset[str]) -> dict[str, np.ndarray]:
        found = {n: x.numpy() for n, x in self.graph.outputs(rows.prepared, rows.present, named_views(rows)).items()}
        members = self.eager.portfolio.members
        if absent:  # the graph's view-reading members saw the absent input as a missing row: not theirs
            found = {n: x for n, x in found.items() if n in members and not members[n].reads_views}
        kept = {n: found[n] for n in [*names, ENSEMBLE] if n in found}
        rest = [n for n in names if n not in kept]
        return kept | (self.eager.batch(rows, rest, absent) if rest else {})


PredictionPath = EagerPath | GraphPath


def prediction_path(portfolio: Portfolio, task: Task, device: str, precision: str, graph: object = None) -> PredictionPath:
    """How a loaded portfolio predicts now: its network on ``device`` at ``precision`` (a lone network's exported
    ``graph`` in its place), and a portfolio graph, where one was loaded, for what it holds."""
    members_graph = graph is not None and bool(graph.members)
    for member in portfolio.members.values():
        if not member.reads_views:  # the network
            member.use(device, precision, None if members_graph else graph)
    eager = EagerPath(portfolio, task)
    return GraphPath(graph, eager) if members_graph else eager


def member_outputs(path: PredictionPath, batches: Iterable[Batch], processors: dict[str, Processor], names: list[str],
                   absent: frozenset[str] = frozenset(),
                   transform: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None) -> dict[str, np.ndarray]:
    """Member name -> its outputs (N, K) over every batch (and ``"ensemble"`` where a graph gives it): ``absent``
    inputs are missing in every row, ``transform`` edits each batch's prepared inputs (corruptions)."""
    views = path.reads_views(names)
    parts: dict[str, list[np.ndarray]] = {}
    for batch in batches:
        check_deadline()  # a served request's time limit, between batches
        inputs = transform(batch.inputs) if transform else batch.inputs
        present = {n: m & (n not in absent) for n, m in batch.present.items()}
        for name, out in path.batch(rows_of(processors, inputs, present, views), names, absent).items():
            parts.setdefault(name, []).append(out)
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}
