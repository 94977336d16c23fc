"""The contracts between layers as typing protocols: what an encoder, a fusion method and a task must offer.

Concrete classes do not inherit from these; anything with the same attributes fits (duck typing, as timm's
``default_cfg``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import numpy as np
from torch import Tensor


class Encoder(Protocol):
    """``forward(x: Tensor[B, ...]) -> Tensor[B, output_dim]``; registered with ``ENCODERS.register(name,
    modality=<input kind>, processor=<kind or None>)``."""

    output_dim: int

    def __call__(self, x: Tensor) -> Tensor: ...


class Fusion(Protocol):
    """Constructed as ``Fusion(input_dims: dict[str, int], out_dim: int, **params)``; ``forward(feats, masks)``
    maps ``dict[str, Tensor[B, D_i]]`` (+ per-row presence masks) to ``Tensor[B, output_dim]``."""

    output_dim: int
    emits_logits: bool

    def __call__(self, feats: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> Tensor: ...


class Task(Protocol):
    """What the training loop and estimators need from a task (classification, regression, retrieval).

    ``logits`` is what the model's output carries under that name: class logits, or a two-tower model's stacked,
    temperature-scaled embeddings.
    """

    name: ClassVar[str]
    primary_metric: str
    maximize: bool

    def loss(self, logits: Tensor, target: Tensor) -> Tensor: ...

    def outputs(self, logits: Tensor) -> np.ndarray: ...

    def metrics(self, target: Tensor, outputs: np.ndarray) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...
