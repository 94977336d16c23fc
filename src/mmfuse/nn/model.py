"""The multimodal model: one encoder per input -> fusion -> head, composed from parts (TorchMultimodal style)."""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..config import EncoderCfg, ModelConfig
from ..core.protocols import Encoder, Fusion
from ..errors import ConfigError
from ..registry import ENCODERS, FUSIONS
from .fusion import presence
from .heads import MLPHead


class ModelOutput(NamedTuple):
    logits: Tensor  # (B, out_dim)
    fused: Tensor   # (B, D) fused features before the head


class MultiModalModel(nn.Module):
    """Encoders -> fusion -> head.

    ``modality_dropout``: at train time each input of each row is hidden with this probability (never all inputs
    of a row), so the model cannot lean on one modality alone and keeps working when one is missing.
    """

    def __init__(self, encoders: nn.ModuleDict, fusion: Fusion, head: nn.Module, modality_dropout: float = 0.0):
        super().__init__()
        self.encoders, self.fusion, self.head = encoders, fusion, head
        self.modality_dropout = modality_dropout
        self.dense = False  # export form: every encoder runs on every row, absent rows zeroed (no data-dependent branch)

    def forward(self, inputs: dict[str, Tensor], present: dict[str, Tensor] | None = None) -> ModelOutput:
        """inputs: name -> (B, ...) prepared tensors; present: name -> (B,) bool, False where that input is missing."""
        present = present or {}
        encode = encode_dense if self.dense else encode_present
        feats = {name: encode(encoder, inputs[name], present.get(name))  # name -> (B, D_i)
                 for name, encoder in self.encoders.items()}
        if self.training and self.modality_dropout > 0 and len(feats) > 1:
            present = self._drop_modalities(feats, present)
        fused = self.fusion(feats, present)
        return ModelOutput(self.head(fused), fused)

    def _drop_modalities(self, feats: dict[str, Tensor], present: dict[str, Tensor] | None) -> dict[str, Tensor]:
        names = sorted(feats)
        given = presence(feats, present, names).bool()  # (B, M)
        keep = torch.rand(given.shape, device=given.device) >= self.modality_dropout
        keep[~keep.any(1)] = True  # a row never loses every input
        return {n: keep[:, i] & given[:, i] for i, n in enumerate(names)}


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


def make_encoder(enc: EncoderCfg, data_kwargs: dict[str, Any]) -> Encoder:
    """An encoder from its config plus the data facts its constructor asks for (others are not passed)."""
    accepted = inspect.signature(ENCODERS.get(enc.name)).parameters
    return ENCODERS.create(enc.name, **{**{k: v for k, v in data_kwargs.items() if k in accepted}, **enc.params})


def build_model(cfg: ModelConfig, input_specs: dict[str, tuple[str, dict[str, Any]]], out_dim: int) -> MultiModalModel:
    """Assemble a model.

    Args:
        cfg: the model config (encoders per modality or column, fusion, head).
        input_specs: input name -> (input kind, what its processor tells the encoder: vocab size, channels, ...).
        out_dim: the task's output width.
    """
    encoders = nn.ModuleDict()
    for name in sorted(input_specs):
        kind, data_kwargs = input_specs[name]
        enc = cfg.encoder_for(name, kind)
        try:
            encoders[name] = make_encoder(enc, data_kwargs)
        except TypeError as err:
            raise ConfigError(f"encoder {enc.name!r} for {name!r}: {err}; check its params in the config") from None
    try:
        fusion = FUSIONS.create(cfg.fusion.name, {n: e.output_dim for n, e in encoders.items()}, out_dim,
                                **cfg.fusion.params)
    except TypeError as err:
        raise ConfigError(f"fusion {cfg.fusion.name!r}: {err}; check its params in the config") from None
    head = (nn.Identity() if fusion.emits_logits else
            MLPHead(fusion.output_dim, out_dim, cfg.head.hidden_dims, cfg.head.dropout, cfg.head.activation))
    return MultiModalModel(encoders, fusion, head, cfg.modality_dropout)
