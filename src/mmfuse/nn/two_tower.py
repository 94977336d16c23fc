"""Two towers (encoder + projection) into one embedding space, for retrieval (CLIP / LiT style)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .model import EncoderChoice, build_encoders


class TwoTowerOutput(NamedTuple):
    logits: Tensor  # (B, 2, D): query and target embeddings, each scaled by sqrt(1 / temperature)


class TwoTowerModel(nn.Module):
    """Two towers (encoder + projection) into one space, and CLIP's learned temperature (capped at 1/100).

    ``locked``: the name of a tower used as is (no projection; LiT): the shared space is its encoder's output.
    """

    def __init__(self, encoders: nn.ModuleDict, query: str, target: str, embed_dim: int = 256,
                 temperature: float = 0.07, locked: str | None = None):
        super().__init__()
        self.encoders, self.query, self.target = encoders, query, target
        if locked is not None:
            embed_dim = encoders[locked].output_dim
        self.projections = nn.ModuleDict({n: nn.Identity() if n == locked or e.output_dim == embed_dim else
                                          nn.Linear(e.output_dim, embed_dim) for n, e in encoders.items()})
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))

    def embed(self, name: str, x: Tensor) -> Tensor:
        """One tower: prepared input (B, ...) -> unit vectors (B, embed_dim)."""
        return F.normalize(self.projections[name](self.encoders[name](x)).float(), dim=-1)

    def forward(self, inputs: dict[str, Tensor], present: dict[str, Tensor] | None = None) -> TwoTowerOutput:
        scale = self.logit_scale.clamp(max=math.log(100)).exp().sqrt()
        return TwoTowerOutput(torch.stack([self.embed(self.query, inputs[self.query]) * scale,
                                           self.embed(self.target, inputs[self.target]) * scale], dim=1))


def build_two_tower(encoders: dict[str, tuple[EncoderChoice, dict[str, Any]]], query: str, target: str,
                    embed_dim: int = 256, temperature: float = 0.07, locked: str | None = None) -> TwoTowerModel:
    """Assemble a two-tower model; ``encoders`` as for ``build_model`` (input -> (encoder choice, data facts));
    ``locked``: the tower used as is (LiT), if any."""
    return TwoTowerModel(build_encoders({n: encoders[n] for n in (query, target)}), query, target, embed_dim,
                         temperature, locked)
