"""A set input's encoder: the element's own encoder on every present element, then a pooling over the elements.

    SetEncoder(CNNEncoder(...), elements=4, element_shape=[3, 64, 64], pooling="mean")
    encoder(x)   # x (B, K, P + 1): K elements flattened, each followed by its presence -> (B, D)

Pooling: ``mean`` (the average of the present elements' features: no parameters) or ``attention`` (a learned query
scores each element, softmax over the present ones: attention-based multiple-instance pooling, Ilse et al. 2018).
Both ignore padding and the order of the elements. Training runs the element encoder on the present elements only;
an exported graph (``dense``) runs it on every slot and lets the mask decide.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..core.set_processor import unfold
from .encoding import encode_dense, encode_present

POOLINGS = ("mean", "attention")


class SetPooling(nn.Module):
    """(B, K, D) element features and their presence (B, K) -> (B, D); a row with no element gives zeros."""

    def __init__(self, dim: int, pooling: str = "mean"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"set pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
        self.pooling = pooling
        self.query = nn.Parameter(torch.zeros(dim)) if pooling == "attention" else None
        self.key = nn.Linear(dim, dim) if pooling == "attention" else None

    def forward(self, feats: Tensor, mask: Tensor) -> Tensor:
        mask = mask.to(feats.dtype)
        if self.query is None:
            return (feats * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        scores = torch.tanh(self.key(feats)) @ self.query.to(feats.dtype) / math.sqrt(feats.shape[-1])  # (B, K)
        scores = scores.masked_fill(mask == 0, -1e4)
        weights = torch.softmax(scores.float(), dim=1).to(feats.dtype) * mask  # a row with no element: all 0
        return (feats * weights.unsqueeze(-1)).sum(1)


class SetEncoder(nn.Module):
    """``element_encoder`` on each element of a set input, pooled. ``element_shape``: one prepared element's shape
    (-1 for a batch-dependent width, e.g. trimmed token ids); ``element_ids``: elements are token ids (integers)."""

    def __init__(self, element_encoder: nn.Module, elements: int, element_shape: list[int], element_ids: bool = False,
                 pooling: str = "mean"):
        super().__init__()
        self.element, self.elements = element_encoder, elements
        self.element_shape, self.element_ids = list(element_shape), element_ids
        self.output_dim = element_encoder.output_dim
        self.pool = SetPooling(self.output_dim, pooling)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, K, P + 1) -> (B, output_dim)."""
        b, k = x.shape[0], x.shape[1]
        elements, mask = unfold(x, self.element_shape, self.element_ids)  # (B * K, ...), (B, K)
        encode = encode_dense if torch.onnx.is_in_onnx_export() else encode_present
        feats = encode(self.element, elements, mask.reshape(-1) > 0.5)  # (B * K, D), absent elements zeroed
        return self.pool(feats.reshape(b, k, -1), mask > 0.5)
