"""Stop training early when a probe says the network is not worth its time: after a few epochs its validation
logits go to a judge (the portfolio's, which asks whether they add to the ensemble of the members fitted so far)."""

from __future__ import annotations

import time
from typing import Callable

import lightning as L
from torch import Tensor


class ProbeAfter(L.Callback):
    """After epoch ``epochs`` (1-based, counting a resumed run's earlier ones) hand the validation logits (N_valid,
    out_dim) and the seconds trained so far to ``keep``; stop training when it answers False."""

    def __init__(self, epochs: int, keep: Callable[[Tensor, float], bool]):
        self.epochs, self.keep = epochs, keep
        self.start = time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if module.epochs_before + trainer.current_epoch + 1 != self.epochs or module.valid_logits is None:
            return
        if not self.keep(module.valid_logits, time.perf_counter() - self.start):
            module.stopped_by = "the probe: it did not add to the ensemble of the members fitted before it"
            trainer.should_stop = True
