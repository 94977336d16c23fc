"""Corruptions of the tabular input (B, 2 * n_numeric + n_categorical) for the robustness analysis."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class TabularCorruptions:
    """Noise on the standardised numeric values; "missing" blanks values as a missing cell would."""

    num_numeric: int          # value + indicator columns (2 per numeric column)
    imputed: list[float]      # each numeric column's standardised median

    def noise(self, x: Tensor, level: float, gen: torch.Generator) -> Tensor:
        out = x.clone()
        values = out[:, 0:self.num_numeric:2]
        out[:, 0:self.num_numeric:2] = values + 2 * level * torch.randn(values.shape, generator=gen)
        return out

    def missing(self, x: Tensor, level: float, gen: torch.Generator) -> Tensor:
        out = x.clone()
        hit = torch.rand(x.shape, generator=gen) < level  # (B, width)
        for j, value in enumerate(self.imputed):
            rows = hit[:, 2 * j]
            out[rows, 2 * j], out[rows, 2 * j + 1] = value, 1.0
        out[:, self.num_numeric:] = out[:, self.num_numeric:].masked_fill(hit[:, self.num_numeric:], 0.0)
        return out
