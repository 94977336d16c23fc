"""Corruptions of token ids (B, L), 0 = padding, 1 = [UNK], for the robustness analysis (level 0 = unchanged)."""

from __future__ import annotations

import torch
from torch import Tensor


def text_typos(ids: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """Each real token becomes [UNK] (id 1) with probability ``level``."""
    hit = (torch.rand(ids.shape, generator=gen) < level) & (ids != 0)
    return ids.masked_fill(hit, 1)


def text_word_drop(ids: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """Each real token is removed with probability ``level``; the rest close up, order kept."""
    keep = (ids != 0) & (torch.rand(ids.shape, generator=gen) >= level)
    order = torch.argsort((~keep).int(), dim=1, stable=True)
    return torch.gather(ids * keep, 1, order)
