"""Corruptions of normalised images (B, C, S, S) for the robustness analysis (level 0 = unchanged)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def image_noise(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """Gaussian noise of 2 * level standard deviations."""
    return x + 2 * level * torch.randn(x.shape, generator=gen)


def image_blur(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """Box blur of width 1 + 2 * round(3 * level)."""
    k = 1 + 2 * round(3 * level)
    return F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False) if k > 1 else x


def image_occlusion(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """A square of side level * S at a random place set to the mean (0 after normalisation)."""
    size = x.shape[-1]
    side = round(level * size)
    out = x.clone()
    for i, (top, left) in enumerate(torch.randint(0, size - side + 1, (len(x), 2), generator=gen).tolist()):
        out[i, :, top:top + side, left:left + side] = 0
    return out
