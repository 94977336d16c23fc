"""Training, the only package that imports Lightning (prediction never loads it): the loop and its checkpoints."""

from .checkpoints import Checkpointing
from .loop import TrainResult, train

__all__ = ["Checkpointing", "TrainResult", "train"]
