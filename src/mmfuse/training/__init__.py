"""Training, the only package that imports Lightning (prediction never loads it): the loop and its checkpoints."""

from .checkpoints import Checkpointing
from .loop import TrainResult, train
from .probe import ProbeAfter

__all__ = ["Checkpointing", "ProbeAfter", "TrainResult", "train"]
