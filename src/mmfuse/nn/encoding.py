"""Running an encoder on the rows where its input is present (training) or on every row, absent ones zeroed (an
exported graph): the model's inputs and a set's elements alike."""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.protocols import Encoder


def encode_present(encoder: Encoder, x: Tensor, present: Tensor | None) -> Tensor:
    """Run an encoder only on the rows where its input is present: x (B, ...), present (B,) -> (B, output_dim).

    Absent rows get zeros (fusion puts its learned missing vector or its mask there); a batch in which no row has
    the input runs no forward pass at all, so a column present in a quarter of the rows costs about a quarter of a
    full one. (Under DDP such a step leaves the encoder's parameters without gradients on that rank.)
    """
    if present is None or bool(present.all()):
        return encoder(x)
    rows = present.nonzero().squeeze(1)  # (b,)
    if len(rows) == 0:
        dtype = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else torch.float32
        return torch.zeros(len(x), encoder.output_dim, dtype=dtype, device=x.device)
    out = encoder(x[rows])  # (b, D)
    return out.new_zeros(len(x), out.shape[1]).index_copy(0, rows, out)


def encode_dense(encoder: Encoder, x: Tensor, present: Tensor | None) -> Tensor:
    """``encode_present``'s result computed on every row (absent rows' outputs zeroed): the form an exported
    graph uses, with no branch on the data. x (B, ...), present (B,) -> (B, output_dim)."""
    out = encoder(x)
    return out if present is None else out * present.unsqueeze(1).to(out.dtype)
