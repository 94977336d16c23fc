"""Fusion methods: ``forward(feats: dict[str, Tensor[B, D_i]], masks: dict[str, Tensor[B]] | None) -> Tensor[B, D]``.

Each method is built from the per-input feature widths (``dict[str, int]``), iterates inputs in ``sorted`` order
and exposes ``output_dim``. Masks are per-row presence flags: a missing input must not leak into the output.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .registry import register_fusion


@register_fusion("concat")
class ConcatFusion(nn.Module):
    """Early fusion by concatenation (the seed's ``concatenate``); a missing input contributes zeros."""

    def __init__(self, input_dims: dict[str, int]):
        super().__init__()
        self.names = sorted(input_dims)
        self.output_dim = sum(input_dims.values())

    def forward(self, feats: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> Tensor:
        parts = []
        for name in self.names:
            x = feats[name]  # (B, D_i)
            if masks is not None and name in masks:
                x = x * masks[name].to(x.dtype).unsqueeze(1)
            parts.append(x)
        return torch.cat(parts, dim=1)  # (B, sum D_i)
