"""The multimodal model: one encoder per input -> fusion -> head, composed from parts (TorchMultimodal style)."""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..core.protocols import Encoder, Fusion
from ..errors import ConfigError
from ..registry import ENCODERS, FUSIONS
from .encoding import encode_dense, encode_present
from .fusion import presence
from .heads import MLPHead
from .sets import SetEncoder


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


class EncoderChoice(NamedTuple):
    """An encoder by registry name and its constructor arguments (a config's ``EncoderCfg`` reads the same)."""

    name: str
    params: dict[str, Any]


def make_encoder(choice: EncoderChoice, data_kwargs: dict[str, Any]) -> Encoder:
    """An encoder from its choice plus the data facts its constructor asks for (others are not passed)."""
    accepted = inspect.signature(ENCODERS.get(choice.name)).parameters
    return ENCODERS.create(choice.name, **{**{k: v for k, v in data_kwargs.items() if k in accepted}, **choice.params})



def build_encoders(encoders: dict[str, tuple[EncoderChoice, dict[str, Any]]]) -> nn.ModuleDict:
    """Input name -> (encoder choice, what its processor tells the encoder) -> the encoders, made in that order; a
    set input's encoder reads one element and is wrapped in a ``SetEncoder`` that pools the elements."""
    built = nn.ModuleDict()
    for name, (choice, data_kwargs) in encoders.items():
        try:
            built[name] = make_encoder(choice, data_kwargs)
        except TypeError as err:
            raise ConfigError(f"encoder {choice.name!r} for {name!r}: {err}; check its params in the config") from None
        if "set_elements" in data_kwargs:
            built[name] = SetEncoder(built[name], data_kwargs["set_elements"], data_kwargs["element_shape"],
                                     data_kwargs["element_ids"], data_kwargs["set_pooling"])
    return built


def build_model(encoders: dict[str, tuple[EncoderChoice, dict[str, Any]]], out_dim: int, fusion: str = "concat",
                fusion_params: dict[str, Any] | None = None, head: dict[str, Any] | None = None,
                modality_dropout: float = 0.0) -> MultiModalModel:
    """Assemble a model.

    Args:
        encoders: input name -> (encoder choice, what its processor tells the encoder: vocab size, channels, ...).
        out_dim: the task's output width.
        fusion, fusion_params: the fusion method by registry name, and its settings.
        head: the MLP head's settings (hidden_dims, dropout, activation).
        modality_dropout: train-time input dropout.
    """
    built = build_encoders({n: encoders[n] for n in sorted(encoders)})
    try:
        fused = FUSIONS.create(fusion, {n: e.output_dim for n, e in built.items()}, out_dim, **(fusion_params or {}))
    except TypeError as err:
        raise ConfigError(f"fusion {fusion!r}: {err}; check its params in the config") from None
    head_module = nn.Identity() if fused.emits_logits else MLPHead(fused.output_dim, out_dim, **(head or {}))
    return MultiModalModel(built, fused, head_module, modality_dropout)


def trainable_parameters(model: nn.Module) -> int:
    """How many of a model's parameters train (a frozen backbone's do not)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
