"""Tabular encoder ``mlp``: numeric features plus learned embeddings of categorical ids, then an MLP."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...registry import ENCODERS


@ENCODERS.register("mlp", modality="tabular")
class TabularMLP(nn.Module):
    """Input (B, num_numeric + n_categorical): numeric values first, then categorical ids stored as floats."""

    def __init__(self, num_numeric: int, cardinalities: list[int] = (), hidden_dims: list[int] = (128,),
                 dropout: float = 0.1):
        super().__init__()
        self.num_numeric = num_numeric
        self.embeddings = nn.ModuleList(nn.Embedding(card, min(16, (card + 1) // 2 + 1)) for card in cardinalities)
        layers: list[nn.Module] = []
        width = num_numeric + sum(e.embedding_dim for e in self.embeddings)
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        self.mlp = nn.Sequential(*layers)
        self.output_dim = width

    def forward(self, x: Tensor) -> Tensor:
        """x (B, num_numeric + n_categorical) -> (B, output_dim)."""
        ids = x[:, self.num_numeric:].long()  # (B, n_categorical)
        parts = [x[:, : self.num_numeric]] + [emb(ids[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.mlp(torch.cat(parts, dim=1))
