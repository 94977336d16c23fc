"""Fusion methods, one class each, chosen by name (``--fusion NAME`` / ``fusion.name`` in a config).

Contract: ``Fusion(input_dims: dict[str, int], out_dim: int, **params)``, where ``out_dim`` is the task's logit
width; ``forward(feats: dict[str, Tensor[B, D_i]], masks: dict[str, Tensor[B]] | None) -> Tensor[B, output_dim]``,
iterating inputs in ``sorted`` order. ``masks`` are per-row presence flags: an absent input must not change the
output. A method with ``emits_logits = True`` (late fusion) returns the task's logits itself, and the model puts
no head after it.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from ..registry import FUSIONS


def presence(feats: dict[str, Tensor], masks: dict[str, Tensor] | None, names: list[str]) -> Tensor:
    """(B, M) float presence of each input (1 where no mask is given)."""
    batch = next(iter(feats.values())).shape[0]
    device = next(iter(feats.values())).device
    columns = [(masks or {}).get(n, torch.ones(batch, dtype=torch.bool, device=device)).to(device) for n in names]
    return torch.stack(columns, dim=1).float()


class Fusion(nn.Module):
    """Base: keeps the sorted input names; subclasses set ``output_dim``.

    Methods that read absent inputs' features (``fills_missing``) see a learned "missing" vector per input in
    their place, the same for every absent row, so an absent input carries no information but the model can
    still learn what absence means.
    """

    emits_logits: ClassVar[bool] = False
    fills_missing: ClassVar[bool] = True

    def __init__(self, input_dims: dict[str, int], out_dim: int, learn_missing: bool = True):
        super().__init__()
        self.names = sorted(input_dims)
        self.output_dim = 0
        learned = self.fills_missing and learn_missing  # off: absent inputs read as zeros
        self.missing = nn.ParameterDict({n: nn.Parameter(torch.zeros(d), requires_grad=learned)
                                         for n, d in input_dims.items()}) if self.fills_missing else None

    def masked(self, feats: dict[str, Tensor], masks: dict[str, Tensor] | None) -> tuple[list[Tensor], Tensor]:
        """Features in sorted order with absent rows replaced by the learned missing vector, and the (B, M)
        presence matrix."""
        present = presence(feats, masks, self.names)
        parts = []
        for i, n in enumerate(self.names):
            keep = present[:, i:i + 1].to(feats[n].dtype)  # (B, 1)
            parts.append(feats[n] * keep + self.missing[n].to(feats[n].dtype) * (1 - keep))
        return parts, present


@FUSIONS.register("concat")
class ConcatFusion(Fusion):
    """Early fusion by concatenation (the seed's ``concatenate``); an absent input contributes its learned missing
    vector (zeros with ``learn_missing=False``)."""

    def __init__(self, input_dims: dict[str, int], out_dim: int, learn_missing: bool = True):
        super().__init__(input_dims, out_dim, learn_missing)
        self.output_dim = sum(input_dims.values())

    def forward(self, feats: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> Tensor:
        return torch.cat(self.masked(feats, masks)[0], dim=1)  # (B, sum D_i)


@FUSIONS.register("late")
class LateFusion(Fusion):
    """Decision-level fusion: one linear head per input, logits averaged over the inputs present (uniformly, or
    with learned weights when ``learned_weights``)."""

    emits_logits, fills_missing = True, False

    def __init__(self, input_dims: dict[str, int], out_dim: int, learned_weights: bool = False):
        super().__init__(input_dims, out_dim)
        self.heads = nn.ModuleDict({n: nn.Linear(d, out_dim) for n, d in input_dims.items()})
        self.weight_logits = nn.Parameter(torch.zeros(len(self.names)), requires_grad=learned_weights)
        self.output_dim = out_dim

    def forward(self, feats: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> Tensor:
        present = presence(feats, masks, self.names)  # (B, M)
        logits = torch.stack([self.heads[n](feats[n]) for n in self.names], dim=1)  # (B, M, out)
        weights = torch.softmax(self.weight_logits, 0) * present  # (B, M)
        weights = weights / weights.sum(1, keepdim=True).clamp(min=1e-6)
        return (logits * weights.unsqueeze(-1).to(logits.dtype)).sum(1)


@FUSIONS.register("gated")
class GatedFusion(Fusion):
    """Gated Multimodal Unit (Arevalo et al., 2017, "Gated Multimodal Units for Information Fusion"): each input
    becomes ``tanh(W_i x_i)``; a softmax gate computed from all inputs weighs them; absent inputs get no weight."""

    def __init__(self, input_dims: dict[str, int], out_dim: int, hidden_dim: int = 128, learn_missing: bool = True):
        super().__init__(input_dims, out_dim, learn_missing)
        self.project = nn.ModuleDict({n: nn.Linear(d, hidden_dim) for n, d in input_dims.items()})
        self.gate = nn.Linear(sum(input_dims.values()), len(self.names))
        self.output_dim = hidden_dim

    def forward(self, feats: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> Tensor:
        parts, present = self.masked(feats, masks)
        hidden = torch.stack([torch.tanh(self.project[n](x)) for n, x in zip(self.names, parts)], dim=1)  # (B, M, H)
        scores = self.gate(torch.cat(parts, dim=1)).float().masked_fill(present == 0, -1e4)
        gates = torch.softmax(scores, dim=1) * present  # (B, M); all-absent rows get zeros
        return (hidden * gates.unsqueeze(-1).to(hidden.dtype)).sum(1)


@FUSIONS.register("tensor")
class TensorFusion(Fusion):
    """Tensor Fusion Network (Zadeh et al., 2017): the outer product of every input's small projection with a 1
    appended, so all unimodal, bimodal, ... interactions appear; an absent input keeps only its constant 1.
    Projections to ``rank_dim`` keep the product's size (rank_dim + 1) ** M affordable."""

    fills_missing = False

    def __init__(self, input_dims: dict[str, int], out_dim: int, rank_dim: int = 8):
        super().__init__(input_dims, out_dim)
        self.project = nn.ModuleDict({n: nn.Linear(d, rank_dim) for n, d in input_dims.items()})
        self.output_dim = (rank_dim + 1) ** len(self.names)

    def forward(self, feats: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> Tensor:
        present = presence(feats, masks, self.names)
        product = None
        for i, n in enumerate(self.names):
            z = self.project[n](feats[n]) * present[:, i:i + 1].to(feats[n].dtype)  # (B, r)
            z = torch.cat([z, torch.ones_like(z[:, :1])], dim=1)  # (B, r + 1)
            product = z if product is None else (product.unsqueeze(2) * z.unsqueeze(1)).flatten(1)
        return product  # (B, (r + 1) ** M)


@FUSIONS.register("lowrank")
class LowRankFusion(Fusion):
    """Low-rank Multimodal Fusion (Liu et al., 2018): the tensor-fusion product computed through rank-``rank``
    factors per input, ``sum_r prod_i ([x_i, 1] W_i^r)``, linear in the number of inputs."""

    def __init__(self, input_dims: dict[str, int], out_dim: int, rank: int = 4, hidden_dim: int = 128,
                 learn_missing: bool = True):
        super().__init__(input_dims, out_dim, learn_missing)
        self.factors = nn.ParameterDict({n: nn.Parameter(torch.randn(rank, d + 1, hidden_dim) * (d + 1) ** -0.5)
                                         for n, d in input_dims.items()})
        self.output_dim = hidden_dim

    def forward(self, feats: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> Tensor:
        parts, _ = self.masked(feats, masks)
        fused = None
        for n, x in zip(self.names, parts):
            z = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)  # (B, D_i + 1)
            term = torch.einsum("bd,rdh->brh", z, self.factors[n].to(z.dtype))  # (B, rank, H)
            fused = term if fused is None else fused * term
        return fused.sum(1)  # (B, H)


@FUSIONS.register("film")
class FiLMFusion(Fusion):
    """FiLM (Perez et al., 2018): the other inputs predict a per-feature scale and shift of one ``target`` input
    (default: the widest); output = [gamma * x_target + beta, the other inputs]. With every conditioning input
    absent the modulation is the identity."""

    def __init__(self, input_dims: dict[str, int], out_dim: int, target: str | None = None,
                 learn_missing: bool = True):
        super().__init__(input_dims, out_dim, learn_missing)
        self.target = target or max(self.names, key=lambda n: input_dims[n])
        self.others = [n for n in self.names if n != self.target]
        width, cond = input_dims[self.target], sum(input_dims[n] for n in self.others)
        self.film = nn.Linear(cond, 2 * width) if self.others else None
        self.output_dim = sum(input_dims.values())

    def forward(self, feats: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> Tensor:
        parts, present = self.masked(feats, masks)
        by_name = dict(zip(self.names, parts))
        x = by_name[self.target]
        if self.film is None:
            return x
        others = [by_name[n] for n in self.others]
        any_other = present[:, [self.names.index(n) for n in self.others]].amax(1, keepdim=True).to(x.dtype)
        gamma, beta = self.film(torch.cat(others, dim=1)).chunk(2, dim=1)
        modulated = (1 + gamma * any_other) * x + beta * any_other
        return torch.cat([modulated, *others], dim=1)


@FUSIONS.register("attention")
class AttentionFusion(Fusion):
    """A small transformer over one token per input plus a learned CLS token; absent inputs are masked out of
    attention. ``cross=True``: MulT-style cross-modal attention, each input's token attends only to the other
    inputs' tokens (and CLS to all)."""

    fills_missing = False

    def __init__(self, input_dims: dict[str, int], out_dim: int, dim: int = 128, depth: int = 2, heads: int = 4,
                 dropout: float = 0.1, cross: bool = False):
        super().__init__(input_dims, out_dim)
        self.tokens = nn.ModuleDict({n: nn.Linear(d, dim) for n, d in input_dims.items()})
        self.modality = nn.Parameter(torch.randn(len(self.names), dim) * 0.02)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.cross = cross
        self.output_dim = dim

    def forward(self, feats: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> Tensor:
        present = presence(feats, masks, self.names)  # (B, M)
        tokens = torch.stack([self.tokens[n](feats[n]) for n in self.names], dim=1) + self.modality  # (B, M, dim)
        x = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)  # (B, 1 + M, dim)
        padding = torch.cat([torch.zeros_like(present[:, :1]), 1 - present], dim=1).bool()  # True = ignore
        attn_mask = None
        if self.cross:
            m = len(self.names) + 1
            attn_mask = torch.eye(m, dtype=torch.bool, device=x.device)
            attn_mask[0, 0] = False  # CLS attends to itself and everything
        return self.norm(self.blocks(x, mask=attn_mask, src_key_padding_mask=padding)[:, 0])
