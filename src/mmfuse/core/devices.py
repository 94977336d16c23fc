"""Which device a run uses: ``auto`` picks a CUDA GPU when one is there, else the CPU."""

from __future__ import annotations

import os

import torch

from ..errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> str:
    """"auto" | "cpu" | "cuda" -> "cpu" or "cuda" (an unavailable GPU is a one-line error)."""
    if device not in DEVICES:
        raise ConfigError(f"device must be auto, cpu or cuda, not {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda: no CUDA GPU is available to this process (torch "
                          f"{torch.__version__}); use device auto or cpu")
    return device


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a training precision ("32": none)."""
    return {"bf16": torch.bfloat16, "16": torch.float16}.get(precision)


def process_rank(devices: int, num_nodes: int) -> tuple[int, int]:
    """(global rank, world size) of this process, from the variables Lightning's launcher (or torchrun / SLURM)
    sets; (0, 1) in a single process."""
    world = devices * num_nodes
    if world == 1:
        return 0, 1
    local = int(os.environ.get("LOCAL_RANK", 0))
    node = int(os.environ.get("NODE_RANK", os.environ.get("SLURM_NODEID", 0)))
    return int(os.environ.get("RANK", node * devices + local)), world
