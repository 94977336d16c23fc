"""Bytes from rank 0 to every other DDP process, once their process group is up: how the other ranks get what rank 0
computed before training (a portfolio's cheap members) without computing it again."""

from __future__ import annotations

from typing import Callable

import lightning as L
import torch
import torch.distributed as dist


class ShareFromRankZero(L.Callback):
    """At ``setup``: rank 0 sends ``payload()``, every other rank hands what it received to ``receive``."""

    def __init__(self, payload: Callable[[], bytes], receive: Callable[[bytes], None]):
        self.payload, self.receive = payload, receive

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.world_size == 1:
            return
        device = trainer.strategy.root_device
        data = self.payload() if trainer.is_global_zero else b""
        size = torch.tensor([len(data)], dtype=torch.long, device=device)
        dist.broadcast(size, src=0)
        buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device) if trainer.is_global_zero else \
            torch.empty(int(size.item()), dtype=torch.uint8, device=device)
        dist.broadcast(buffer, src=0)
        if not trainer.is_global_zero:
            self.receive(buffer.cpu().numpy().tobytes())
