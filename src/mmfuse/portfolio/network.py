"""The fused network (or a retrieval model's two towers) as a portfolio member: trained end to end on the prepared
inputs by ``training.train`` (its checkpoints, resume, DDP and early stopping, unchanged), for what is left of the
fit's time budget. The estimator builds the model and says how it trains here (``NetworkPlan``); its weights are the
bundle's ``model.safetensors``, not the portfolio's files (``saved_apart``)."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..config import TrainCfg
from ..core.devices import autocast_dtype
from ..core.processor import Progress
from ..core.set_processor import SetProcessor
from ..data.dataset import EncodedSplit, TableDataset, joined
from ..nn.export import ExportGraph, dense
from ..nn.model import trainable_parameters
from ..registry import MEMBERS
from ..tasks.base import Task
from .budget import TimeBudget
from .flat import FlatInputs
from .member import LABEL_KINDS, FitData, Member, Stacked

log = logging.getLogger("mmfuse")


@dataclass
class NetworkPlan:
    """How the network trains in this fit: the config's training settings (their ``network_time_limit`` cut to the
    budget's remaining seconds when it starts) and the trainer's runtime."""

    settings: TrainCfg
    progress: Progress | None = None
    callbacks: list = field(default_factory=list)   # Lightning callbacks (the user's, the estimator's, DDP sharing)
    checkpoints: dict[str, Any] | None = None       # ``training.Checkpointing``'s arguments (None: no checkpoints)
    accelerator: str = "cpu"
    log_level: int = logging.INFO
    valid_rows: int = 256                           # rows per validation batch (``InputPipeline.batch_rows``)
    fresh: Callable[[], nn.Module] | None = None     # the model as first built (seeded), for the refit


@MEMBERS.register("network", cost=9)
class NetworkMember(Member):
    """The network, trained last: its fit has no end of its own but early stopping (``open_ended``), so with no time
    limit given it gets the budget's default when it starts."""

    name = "network"
    output_kinds = LABEL_KINDS | {"embedding"}
    reads_views, saved_apart, open_ended = False, True, True
    CHECK_ROWS = 256  # validation rows a refit still scores each epoch (they decide nothing: it trains a set count)

    def __init__(self, model: nn.Module | None = None, plan: NetworkPlan | None = None, device: str = "cpu",
                 precision: str = "32"):
        self.model, self.plan, self.device, self.precision = model, plan, device, precision
        self.graph: Any = None    # an exported network graph (``OnnxNetwork``) that runs in place of the model
        self.result: Any = None   # the ``training.TrainResult`` once fitted
        self.fit_seconds = 0.0

    def use(self, device: str, precision: str, graph: Any = None) -> None:
        """Predict on ``device`` with the ``precision`` autocast (or with the exported ``graph`` instead)."""
        self.device, self.precision, self.graph = device, precision, graph

    def fit(self, data: FitData, task: Task, budget: TimeBudget, upstream: dict[str, Stacked]) -> "NetworkMember":
        from ..training import Checkpointing, ProbeAfter, train  # Lightning loads only to train

        plan, start = self.plan, time.perf_counter()
        log.log(plan.log_level, f"network: {trainable_parameters(self.model):,} trainable parameters; train {len(data.train_set)} rows, "
                                f"valid {len(data.valid_set)} rows")
        limit = budget.network_limit(plan.settings.network_time_limit)
        settings = plan.settings.model_copy(update={"network_time_limit": limit})
        checkpointing = Checkpointing(**plan.checkpoints) if plan.checkpoints else None
        probe = [ProbeAfter(self.probe.epochs, self.probe)] if self.probe and settings.max_epochs > self.probe.epochs \
            else []
        self.result = train(self.model, task, data.train_set, data.valid_set, settings, plan.progress,
                            plan.callbacks + probe, checkpointing, accelerator=plan.accelerator,
                            log_level=plan.log_level, valid_rows=plan.valid_rows)
        self.fit_seconds = time.perf_counter() - start
        return self

    def cannot_refit(self, data: FitData) -> str | None:
        if self.result is None or self.result.restored_epoch is None or self.plan is None or self.plan.fresh is None:
            return "it kept no epoch, or its model cannot be built afresh"
        rows = self._every_row(data)
        return rows if isinstance(rows, str) else None

    def _every_row(self, data: FitData) -> EncodedSplit | str:
        """The training and validation rows as one split (or why they cannot be: ``joined``)."""
        return joined(data.train_set.split, data.valid_set.split,
                      {n for n, p in data.processors.items() if p.ragged and not isinstance(p, SetProcessor)})

    def refit_seconds(self, seconds: float) -> float:
        """Its refit trains the epochs kept, not those early stopping waited through."""
        return seconds * self.result.restored_epoch / max(len(self.result.history), 1)

    def refit(self, data: FitData, task: Task, budget: TimeBudget, upstream: dict[str, Stacked]) -> "NetworkMember":
        """The model as first built, trained on the training and validation rows for the epochs validation kept
        (its schedule over those epochs; no early stopping, the last epoch kept)."""
        from ..training import train

        plan = self.plan
        every = TableDataset(self._every_row(data), data.train_set.processors, data.every_target, train=True,
                             workers=data.train_set.workers, weight=data.every_weight)
        check = data.valid_set.split.take(torch.arange(min(len(data.valid_set), self.CHECK_ROWS)))
        check_set = TableDataset(check, data.valid_set.processors, data.valid_target[: len(check.rows)])
        settings = plan.settings.model_copy(update={
            "max_epochs": self.result.restored_epoch, "early_stopping": False, "restore_best": False,
            "network_time_limit": budget.network_limit(None)})
        model, start = plan.fresh(), time.perf_counter()
        refitted = NetworkMember(model, plan, self.device, self.precision)
        refitted.result = train(model, task, every, check_set, settings, plan.progress, [], None,
                                accelerator=plan.accelerator, log_level=plan.log_level, valid_rows=plan.valid_rows)
        refitted.fit_seconds = time.perf_counter() - start
        return refitted

    def valid_logits(self, data: FitData, upstream: dict[str, np.ndarray]) -> np.ndarray:
        batches = data.rows(data.valid_set, views=False, batch_rows=self.plan.valid_rows if self.plan else None)
        return np.concatenate([self.logits(rows) for rows in batches])

    @torch.inference_mode()
    def logits(self, rows: FlatInputs, absent: frozenset[str] = frozenset(),
               upstream: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """(B, out_dim) for one batch's prepared inputs (absence is carried by ``rows.present``)."""
        if self.graph is not None:
            return self.graph.logits(rows.prepared, rows.present).numpy()
        device = torch.device(self.device)
        self.model.to(device).eval()
        dtype = autocast_dtype(self.precision)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            inputs = {n: x.to(device, non_blocking=True) for n, x in rows.prepared.items()}
            present = {n: m.to(device, non_blocking=True) for n, m in rows.present.items()}
            return self.model(inputs, present).logits.float().cpu().numpy()

    def module(self) -> nn.Module:
        """The network in its export form, ``forward(*inputs, *presence) -> (B, out_dim)`` logits, inputs in sorted
        name order (``nn.export.ExportGraph``)."""
        return ExportGraph(dense(copy.deepcopy(self.model).cpu()).float(), sorted(self.model.encoders))

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {}  # the weights are the bundle's model.safetensors

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> "NetworkMember":
        return cls()
