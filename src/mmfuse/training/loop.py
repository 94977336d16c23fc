"""The training loop, on Lightning.

``train(model, task, train_set, valid_set, cfg)`` trains any model whose output has ``.logits`` that its task's
loss reads (a fused classifier's logits, or a two-tower model's stacked embeddings); it runs AdamW/Adam with a cosine,
one-cycle or constant schedule, validates every epoch (each epoch's training and validation seconds go into the
history), stops early on the task's primary validation metric (unless the config says otherwise), honours
``max_epochs`` and ``network_time_limit``, restores the best epoch's weights (best metric, then lowest loss; unless
``restore_best`` is off, as in the seed recipe) and returns the per-epoch history. With a ``Checkpointing`` plan it
saves the run's state as it goes and can resume from it (``checkpoints.py``).
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from datetime import timedelta
from typing import Any, NamedTuple

import lightning as L
import torch
import torch.utils.deterministic
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.strategies import DDPStrategy
from torch import Tensor, nn

from ..config import TrainCfg
from ..core.devices import process_rank
from ..core.processor import Progress
from ..core.protocols import Task
from ..data.dataset import Batch, TableDataset, make_loader
from .checkpoints import Checkpointing, EpochCheckpoint, restore_random_state, resume_into

log = logging.getLogger("mmfuse")
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
logging.getLogger("lightning.fabric").setLevel(logging.WARNING)


class LitMultiModal(L.LightningModule):
    """Wraps a model and its task; keeps the per-epoch history and the best weights seen."""

    def __init__(self, model: nn.Module, task: Task, cfg: TrainCfg, steps_per_epoch: int):
        super().__init__()
        self.model, self.task, self.cfg, self.steps_per_epoch = model, task, cfg, steps_per_epoch
        self.history: list[dict[str, float]] = []
        self.epochs_before = 0  # epochs a resumed run had already trained
        self.best_score: tuple[float, float] | None = None
        self.best_state: dict[str, Tensor] | None = None
        self._train_losses: list[float] = []
        self._val_logits: list[Tensor] = []
        self._val_targets: list[Tensor] = []
        self._val_weights: list[Tensor | None] = []
        self.valid_logits: Tensor | None = None  # the last validation's (N_valid, out_dim), for a probe
        self.stopped_by: str | None = None       # why a callback stopped training, in words
        self._epoch_start = self._valid_start = time.perf_counter()

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        loss = self._loss(self.model(batch.inputs, batch.present).logits, batch.target, batch.weight)
        self._train_losses.append(loss.item())
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._val_logits.append(self.model(batch.inputs, batch.present).logits.cpu())
        self._val_targets.append(batch.target.cpu())
        self._val_weights.append(None if batch.weight is None else batch.weight.cpu())

    def on_train_epoch_start(self) -> None:
        self._epoch_start = time.perf_counter()

    def on_validation_epoch_start(self) -> None:
        self._valid_start = time.perf_counter()

    def on_validation_epoch_end(self) -> None:
        logits, target = torch.cat(self._val_logits), torch.cat(self._val_targets)
        weight = None if not self._val_weights or self._val_weights[0] is None else torch.cat(self._val_weights)
        for kept in (self._val_logits, self._val_targets, self._val_weights):
            kept.clear()
        self.valid_logits = logits
        val_loss = self._loss(logits, target, weight).item()
        weights = None if weight is None else weight.double().numpy()
        metrics = {f"val_{k}": v for k, v in self.task.metrics(target, self.task.outputs(logits), weights).items()}
        primary = metrics.get(f"val_{self.task.primary_metric}", float("nan"))  # NaN: the metric does not apply
        self.log("val_loss", val_loss, prog_bar=True)
        self.log(f"val_{self.task.primary_metric}", primary, prog_bar=True)
        train_loss = sum(self._train_losses) / max(len(self._train_losses), 1)
        self._train_losses.clear()
        now = time.perf_counter()
        self.history.append({"epoch": self.epochs_before + self.current_epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                             **metrics, "seconds": now - self._epoch_start,
                             "train_seconds": self._valid_start - self._epoch_start,  # forward + backward steps
                             "valid_seconds": now - self._valid_start})
        score = epoch_rank(self.task, primary, val_loss)
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_state = score, copy.deepcopy(self.model.state_dict())

    def _loss(self, logits: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
        """The task's loss, each row counted with its weight where the rows have weights."""
        return self.task.loss(logits, target) if weight is None else self.task.loss(logits, target, weight)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.model.parameters() if p.requires_grad]
        # fused: one kernel over all parameters; on a 2-core CPU ~10x faster than the per-tensor loop, which took
        # a third of a step with the lexical path's embedding tables (profiled on the movies table)
        optimizer_cls = torch.optim.Adam if self.cfg.optimizer == "adam" else torch.optim.AdamW
        optimizer = optimizer_cls(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay, fused=True)
        total = self.steps_per_epoch * self.cfg.max_epochs
        if self.cfg.schedule == "constant":
            return optimizer
        if self.cfg.schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        else:
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.cfg.lr, total_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def epoch_rank(task: Task, primary: float, val_loss: float) -> tuple[float, float]:
    """How epochs compare (higher is better): the task's primary validation metric, then the loss on ties."""
    return (primary if task.maximize else -primary, -val_loss)


class EpochReport(L.Callback):
    """Training as the library reports it (Lightning's own bar stays off: the library never draws): each step to a
    ``progress(what, done, total)`` callback as ``epoch k/n`` (1-based), and one log line per epoch with its
    losses, primary metric and seconds."""

    def __init__(self, progress: Progress | None, max_epochs: int, log_level: int, metric: str):
        self.progress, self.max_epochs, self.log_level, self.metric = progress, max_epochs, log_level, metric

    def on_train_batch_end(self, trainer: L.Trainer, module: "LitMultiModal", outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.progress and trainer.is_global_zero:
            epoch = module.epochs_before + trainer.current_epoch + 1
            self.progress(f"epoch {epoch}/{self.max_epochs}", batch_idx + 1, trainer.num_training_batches)

    def on_train_epoch_end(self, trainer: L.Trainer, module: "LitMultiModal") -> None:
        if trainer.is_global_zero and module.history:
            e = module.history[-1]
            log.log(self.log_level, f"epoch {e['epoch']}/{self.max_epochs}: train_loss {e['train_loss']:.4f}, "
                                    f"val_loss {e['val_loss']:.4f}, val_{self.metric} {e[f'val_{self.metric}']:.4f} "
                                    f"({e['seconds']:.1f} s)")


class TrainResult(NamedTuple):
    history: list[dict[str, float]]
    restored_epoch: int | None  # the (1-based) epoch whose weights the model has; None: no epoch ran
    global_rank: int  # 0 in a single process; under DDP, this process's rank (only rank 0 writes files)
    processes: int    # how many processes trained together (the world size)
    stopped: str      # why training ended, in words ("early stopping: ...", "the epoch limit", "the time limit")


def train(model: nn.Module, task: Task, train_set: TableDataset, valid_set: TableDataset, cfg: TrainCfg,
          progress: Progress | None = None, callbacks: list[L.Callback] | None = None,
          checkpointing: Checkpointing | None = None, accelerator: str = "cpu",
          log_level: int = logging.INFO, valid_rows: int = 256) -> TrainResult:
    """Fit ``model`` in place (best validation epoch restored) and return the per-epoch history.

    ``progress``: receives each training step (``EpochReport``); ``log_level``: of the per-epoch lines and of the
    line that names the restored epoch; ``callbacks``: extra Lightning callbacks (benchmarks use one to time
    epochs and score a test set);
    ``checkpointing``: save every epoch's state, and resume from the last one when the plan says so. With
    ``cfg.devices * cfg.num_nodes`` > 1 this runs DDP: each process trains on its share of each global batch
    (``cfg.batch_size`` rows in all), validates on the whole validation set (so every process takes the same
    early-stopping decision), and only rank 0 saves checkpoints. ``accelerator``: "cpu" or "gpu" (then batches come
    from pinned memory, and the model is moved back to the CPU when training ends). ``valid_rows``: rows per
    validation batch (at least ``cfg.batch_size``; fewer than 256 for set inputs, ``InputPipeline.batch_rows``).
    """
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    rank, world = process_rank(cfg.devices, cfg.num_nodes)
    pin = accelerator == "gpu"
    train_loader = make_loader(train_set, cfg.batch_size, shuffle=True, seed=cfg.seed, rank=rank, world=world,
                               pin_memory=pin)
    valid_loader = make_loader(valid_set, max(cfg.batch_size, valid_rows), shuffle=False, pin_memory=pin)
    module = LitMultiModal(model, task, cfg, steps_per_epoch=len(train_loader))
    monitor = EarlyStopping(f"val_{task.primary_metric}", patience=cfg.patience, mode="max" if task.maximize else "min")
    restore = resume_into(module, checkpointing) if checkpointing and checkpointing.resume else None
    if restore is not None and (restore[1]["stopped"] or restore[1]["epoch"] >= cfg.max_epochs):
        # training had finished; only its save was lost
        return TrainResult(*_finish(model, module, cfg, task, log_level), rank, world,
                           "it had finished before the interruption")
    callbacks = ([monitor] if cfg.early_stopping else []) + list(callbacks or [])
    callbacks.append(EpochReport(progress, cfg.max_epochs, log_level, task.primary_metric))
    if checkpointing:
        callbacks.append(EpochCheckpoint(checkpointing, monitor if cfg.early_stopping else None, restore))
    before = torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory
    trainer = L.Trainer(  # deterministic=True turns on torch.use_deterministic_algorithms for the process
        accelerator=accelerator, devices=cfg.devices, num_nodes=cfg.num_nodes,
        strategy=DDPStrategy(find_unused_parameters=True) if world > 1 else "auto",  # absent inputs skip encoders
        use_distributed_sampler=False,  # the loaders shard themselves (make_loader)
        max_epochs=cfg.max_epochs - module.epochs_before, callbacks=callbacks,
        logger=False,
        enable_checkpointing=checkpointing is not None, enable_model_summary=False, enable_progress_bar=False,
        precision={"bf16": "bf16-mixed", "16": "16-mixed"}.get(cfg.precision, "32-true"),
        num_sanity_val_steps=0, deterministic=True,
        max_time=timedelta(seconds=cfg.network_time_limit) if cfg.network_time_limit else None)
    if restore is not None:
        restore_random_state(*restore, train_loader)
    # deterministic algorithms also fill every new tensor with NaN (to expose reads of uninitialised memory): that
    # changes no result and took 7% of a default step and 19% of a wide one on a 2-core CPU (profiled), so not here
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=r".*is deprecated, use `isinstance\(treespec.*")
            trainer.fit(module, train_loader, valid_loader)
    finally:  # the process's settings as they were before training
        torch.use_deterministic_algorithms(before[0])
        torch.utils.deterministic.fill_uninitialized_memory = before[1]
    level = log_level if trainer.is_global_zero else logging.DEBUG
    stopped = module.stopped_by or stop_reason(module.history, cfg, monitor, task.primary_metric)
    log.log(level, f"training stopped after epoch {module.history[-1]['epoch'] if module.history else 0}: {stopped}")
    return TrainResult(*_finish(model, module, cfg, task, level), trainer.global_rank, trainer.world_size, stopped)


def stop_reason(history: list[dict[str, float]], cfg: TrainCfg, monitor: EarlyStopping, metric: str) -> str:
    """Why a finished ``trainer.fit`` ended, in words."""
    epochs = history[-1]["epoch"] if history else 0
    if epochs >= cfg.max_epochs:
        return f"the epoch limit (max_epochs {cfg.max_epochs})"
    if cfg.early_stopping and monitor.stopped_epoch > 0:
        patience = f"{cfg.patience} epoch{'s' if cfg.patience > 1 else ''}"
        return f"early stopping: validation {metric} did not improve for {patience} in a row (patience {cfg.patience})"
    if cfg.network_time_limit:
        return f"the time limit ({cfg.network_time_limit:.0f} s for the network) ran out"
    return "the trainer stopped"


def _finish(model: nn.Module, module: LitMultiModal, cfg: TrainCfg, task: Task,
            log_level: int) -> tuple[list[dict[str, float]], int | None]:
    """Put the best epoch's weights back (unless the config keeps the last) and say which epoch the model is:
    (history, that epoch)."""
    history, epoch = module.history, None
    if cfg.restore_best and module.best_state is not None:
        model.load_state_dict(module.best_state)
        metric = f"val_{task.primary_metric}"
        best = max(history, key=lambda e: epoch_rank(task, e[metric], e["val_loss"]))  # the first of ties, as in fit
        epoch = best["epoch"]
        log.log(log_level, f"best epoch {epoch} of {len(history)} restored ({metric} {best[metric]:.4f})")
    elif history:
        epoch = history[-1]["epoch"]
        log.log(log_level, f"kept the last epoch, {epoch} of {len(history)} (restore_best is off)")
    model.cpu().eval()  # predictions move it to their device
    return history, epoch
