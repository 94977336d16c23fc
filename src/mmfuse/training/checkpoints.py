"""Per-epoch checkpoints of a training run and resuming from them, to the same weights an uninterrupted run reaches.

The whole state of the run is saved (weights, best weights, optimizer moments, scheduler, early-stopping counters,
global and shuffling RNG state, history) as safetensors + JSON through ``io.checkpoint``; ``time_limit`` aside (its
clock restarts), a resumed run repeats the uninterrupted one bit for bit (``tests/test_resume.py``).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint, EarlyStopping
from torch import Tensor

from ..data.dataset import loader_generator
from ..io.checkpoint import check_fingerprint, load_checkpoint, save_checkpoint

log = logging.getLogger("mmfuse")


@dataclass(frozen=True)
class Checkpointing:
    """Where to save the run's state, the run's fingerprint (data + settings), whether to resume, and the least
    seconds between two saves (0: after every epoch; a save of a large model's weights and moments takes a while)."""

    folder: Path
    fingerprint: dict[str, str]
    resume: bool = False
    every_seconds: float = 0.0


class EpochCheckpoint(Checkpoint):
    """Saves the run's state after each epoch, validation and early stopping included; on resume, puts back the
    optimizer, scheduler and early-stopping state a checkpoint holds just before the first resumed epoch (the RNG
    state is put back earlier, by ``restore_random_state``). A ``Checkpoint`` callback, so that Lightning runs its
    epoch-end hook after early stopping's."""

    def __init__(self, plan: Checkpointing, early_stopping: EarlyStopping | None,
                 restore: tuple[dict[str, Tensor], dict[str, Any]] | None = None):
        self.plan, self.early_stopping, self.restore = plan, early_stopping, restore
        self.last_save = time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.restore is None:
            return
        tensors, state = self.restore
        optimizer = trainer.optimizers[0]
        moments: dict[int, dict[str, Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                moments.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": moments, "param_groups": state["param_groups"]})
        match_memory_format(optimizer)
        if trainer.lr_scheduler_configs:
            trainer.lr_scheduler_configs[0].scheduler.load_state_dict(state["scheduler"])
        if self.early_stopping is not None and state.get("early_stopping"):
            self.early_stopping.load_state_dict({**state["early_stopping"],
                                                 "best_score": torch.tensor(state["early_stopping"]["best_score"])})

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero or time.perf_counter() - self.last_save < self.plan.every_seconds:
            return
        optimizer = trainer.optimizers[0].state_dict()
        tensors = {f"model.{k}": v for k, v in module.model.state_dict().items()}
        tensors |= {f"best.{k}": v for k, v in (module.best_state or {}).items()}
        tensors |= {f"optim.{i}.{name}": v for i, moments in optimizer["state"].items() for name, v in moments.items()}
        tensors |= {"rng.torch": torch.get_rng_state(),
                    "rng.loader": loader_generator(trainer.train_dataloader).get_state()}
        numpy_state = np.random.get_state()
        stopping = self.early_stopping.state_dict() if self.early_stopping is not None else None
        state = {"fingerprint": self.plan.fingerprint, "history": module.history, "best_score": module.best_score,
                 "stopped": bool(trainer.should_stop), "param_groups": optimizer["param_groups"],
                 "scheduler": trainer.lr_scheduler_configs[0].scheduler.state_dict() if trainer.lr_scheduler_configs
                 else None,
                 "early_stopping": {**stopping, "best_score": float(stopping["best_score"])} if stopping else None,
                 "rng_numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
                 "rng_python": random.getstate()}
        save_checkpoint(self.plan.folder, module.epochs_before + trainer.current_epoch + 1, tensors, state)
        self.last_save = time.perf_counter()


def match_memory_format(optimizer: torch.optim.Optimizer) -> None:
    """Give each restored moment its parameter's memory layout. Checkpoints store tensors contiguous, and the fused
    Adam kernel walks a parameter and its moments as raw memory: a channels-last conv weight (the ``cnn`` encoder)
    with contiguous moments would be updated with its elements mixed up."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            moments = optimizer.state.get(param, {})
            for name, value in moments.items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    moments[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def resume_into(module: L.LightningModule, plan: Checkpointing) -> tuple[dict[str, Tensor], dict[str, Any]] | None:
    """Load the last complete checkpoint into ``module`` (weights, best weights, history); None if there is none."""
    saved = load_checkpoint(plan.folder)
    if saved is None:
        log.warning(f"resume: no complete checkpoint in {plan.folder}; training from the start")
        return None
    tensors, state = saved
    check_fingerprint(state, plan.fingerprint, plan.folder)
    module.model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    best = {k[len("best."):]: v for k, v in tensors.items() if k.startswith("best.")}
    module.best_state = best or None
    module.best_score = tuple(state["best_score"]) if state["best_score"] is not None else None
    module.history, module.epochs_before = state["history"], state["epoch"]
    log.warning(f"resume: continuing after epoch {state['epoch']} from {plan.folder}")
    return tensors, state


def restore_random_state(tensors: dict[str, Tensor], state: dict[str, Any], train_loader: Any) -> None:
    """The RNG and shuffling state after the checkpoint's epoch. Put back before ``trainer.fit``: Lightning opens the
    first epoch's loader iterator (which draws a seed from the global RNG) before any training hook runs, where an
    uninterrupted run opens it at that epoch's start."""
    torch.set_rng_state(tensors["rng.torch"])
    loader_generator(train_loader).set_state(tensors["rng.loader"])
    np.random.set_state(tuple(state["rng_numpy"]))
    random.setstate((state["rng_python"][0], tuple(state["rng_python"][1]), state["rng_python"][2]))
