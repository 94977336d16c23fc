"""Pretrained encoders: a backbone (only when fine-tuned) and a learned projection.

- ``minilm``: all-MiniLM-L6-v2 sentence embeddings (384-d); ``text_hf``: a local Hugging Face folder;
  ``efficientnet_lite0``: ImageNet EfficientNet-Lite0 pooled features (1280-d).

Each names its processor in its registration (``pretrained_text`` / ``pretrained_image``: the backbone's tokenizer
or image scaling). Frozen (the default) that processor runs the backbone once per value and caches the features,
and the encoder is only the projection; with ``finetune: true`` the backbone is part of the encoder and trains.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...core.ngrams import NgramParams
from ...nn.bag import NgramBag
from ...registry import ENCODERS
from .backbones import load_backbone


class _PretrainedEncoder(nn.Module):
    """Backbone (only when fine-tuned) -> optional LayerNorm and dropout -> learned linear projection.

    Input: frozen, the cached backbone features (B, F); fine-tuned, what the backbone reads (token ids or pixels).
    ``proj_dim: 0`` keeps the backbone's features (B, F) as the output (a retrieval model's locked tower).
    ``source`` comes from the processor (the registration's default, or the config's); settings only the
    processor reads (``image_size``, the frozen pass's ``precision``) go to it alone (``pipeline.plan_inputs``).
    """

    def __init__(self, feature_dim: int, source: str | None = None, proj_dim: int = 256,
                 finetune: bool = False, norm: bool = False, dropout: float = 0.0):
        super().__init__()
        self.backbone = load_backbone(source).train() if finetune else None
        self.proj = nn.Sequential(*([nn.LayerNorm(feature_dim)] if norm else []),
                                  *([nn.Dropout(dropout)] if dropout else []),
                                  nn.Linear(feature_dim, proj_dim) if proj_dim else nn.Identity())
        self.output_dim = proj_dim or feature_dim

    def forward(self, x: Tensor) -> Tensor:
        """(B, F) features, or (B, L) ids / (B, 3, S, S) images when fine-tuned -> (B, output_dim)."""
        return self.proj(self.backbone(x) if self.backbone is not None else x)


class _PretrainedTextEncoder(_PretrainedEncoder):
    """A pretrained text encoder with an optional lexical path: ``ngrams`` (``core.ngrams.NgramParams``: n,
    min_count, max_features, max_ngrams, dim) adds a learned bag of word n-gram embeddings (``nn.bag.NgramBag``)
    whose output is concatenated to the projection: (B, proj_dim + ngrams.dim). Its input rows carry the n-gram ids
    after the features (frozen) or after the ``max_length`` token ids (fine-tuned)."""

    def __init__(self, feature_dim: int, source: str | None = None, proj_dim: int = 256, finetune: bool = False,
                 norm: bool = False, dropout: float = 0.0, max_length: int = 64, ngrams: dict | None = None,
                 ngram_vocab_size: int = 0):
        super().__init__(feature_dim, source, proj_dim, finetune, norm, dropout)
        self.words = NgramBag(ngram_vocab_size, NgramParams(**ngrams).dim) if ngrams is not None else None
        self.split = max_length if finetune else feature_dim
        self.output_dim += self.words.output_dim if self.words is not None else 0

    def forward(self, x: Tensor) -> Tensor:
        """(B, F [+ L]) features [+ n-gram ids], or (B, max_length [+ L]) token ids when fine-tuned -> (B, D)."""
        if self.words is None:
            return super().forward(x)
        deep = super().forward(x[:, : self.split])
        return torch.cat([deep, self.words(x[:, self.split:].long()).to(deep.dtype)], 1)


@ENCODERS.register("minilm", modality="text", processor="pretrained_text", processor_settings={"source": "minilm"})
class MiniLMEncoder(_PretrainedTextEncoder):
    """all-MiniLM-L6-v2 sentence embeddings (mean pooled, 384-d) + projection. Params: proj_dim (0: none),
    norm, dropout, finetune, max_length (tokens, default 64), ngrams (a lexical path: a dict, ``{}`` for its
    defaults)."""


@ENCODERS.register("text_hf", modality="text", processor="pretrained_text")
class HFTextEncoder(_PretrainedTextEncoder):
    """A local Hugging Face encoder folder (``source: /path``), mean pooled, + projection."""


@ENCODERS.register("efficientnet_lite0", modality="image", processor="pretrained_image",
                   processor_settings={"source": "efficientnet_lite0"})
class EfficientNetLite0Encoder(_PretrainedEncoder):
    """ImageNet EfficientNet-Lite0 pooled features (1280-d) + projection. Params: proj_dim (0: none), norm,
    dropout, finetune, image_size (default 224)."""
