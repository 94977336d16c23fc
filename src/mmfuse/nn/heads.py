"""Prediction head: fused features (B, D) -> task logits (B, out_dim) through an optional MLP."""

from __future__ import annotations

from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class MLPHead(nn.Module):
    """``hidden_dims=[]`` is a single Linear layer (the seed's Dense output)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dims: list[int] = (), dropout: float = 0.0,
                 activation: str = "gelu"):
        super().__init__()
        layers: list[nn.Module] = []
        for hidden in hidden_dims:
            layers += [nn.Linear(in_dim, hidden), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            in_dim = hidden
        layers.append(nn.Linear(in_dim, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
