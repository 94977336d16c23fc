"""Pretrained text encoders: MiniLM (``minilm``) and local Hugging Face folders (``text_hf``), each with the
``pretrained_text`` processor (the backbone's own tokenizer, and frozen features cached: ``core.frozen``).

Text with ``ngrams`` (the lexical path, ``core.ngrams``): each row also carries the ids of its distinct word n-grams,
appended after the frozen features as (N, F + L) floats (ids are exact in float32 up to 2**24), or after the
``max_length`` token ids when fine-tuned; the encoder splits them at F (or ``max_length``) and adds a learned bag of
their embeddings beside the projection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from ...core.frozen import FrozenFeatureProcessor, feature_noise, on_columns
from ...core.ngrams import NgramParams, drop_ngrams, fit_vocabulary, ngram_ids, ngram_index, ngram_settings
from ...core.processor import TRUNCATED, Corruption, FlatView, Progress, Transformed, trim_padding
from ...nn.backbone import ProjectedBackbone
from ...nn.bag import NgramBag
from ...registry import ENCODERS
from .backbone import TextBackbone, text_backbone_identity, text_feature_dim, text_model_dir
from .processor import MAX_TEXT_CHARS

CHARS_PER_TOKEN = 100  # WordPiece reads a longer word as one [UNK]: only whitespace runs could need more


class PretrainedTextProcessor(FrozenFeatureProcessor):
    """Text with the backbone's own tokenizer (``tokenizer.json``), truncated to ``max_length`` tokens; with
    ``ngrams`` (a dict of ``core.ngrams.NgramParams``), also the ids of each text's word n-grams."""

    kind, modality = "pretrained_text", "text"
    max_chars = MAX_TEXT_CHARS

    @property
    def ragged(self) -> bool:  # token or n-gram ids trimmed to the batch's longest row; frozen features alone: fixed
        return self.finetune or self._ngram_settings is not None

    def __init__(self, column: str, source: str, finetune: bool = False, max_length: int = 64,
                 precision: str = "bf16", ngrams: dict[str, Any] | None = None):
        super().__init__(column, source, finetune, precision)
        self.max_length, self.ngrams = max_length, ngrams
        self._ngram_settings = ngram_settings(column, ngrams) if ngrams is not None else None

    def _load_backbone(self) -> nn.Module:
        return TextBackbone(self.source)

    def _backbone_identity(self) -> dict[str, Any]:
        return text_backbone_identity(self.source)

    def _settings(self) -> dict[str, Any]:
        return {"max_length": self.max_length}

    def fit(self, values: pd.Series, root: Path, progress: Progress | None = None) -> "PretrainedTextProcessor":
        self.feature_dim_ = text_feature_dim(self.source)
        if self._ngram_settings is not None:
            self.ngram_vocabulary_ = fit_vocabulary(values, self._ngram_settings)
        self._restore_tokenizer()
        return super().fit(values, root)

    def _setup(self) -> None:
        super()._setup()
        self._restore_tokenizer()

    def _restore_tokenizer(self) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(text_model_dir(self.source) / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_truncation(self.max_length)
        if self._ngram_settings is not None:
            self._ngram_index = ngram_index(self.ngram_vocabulary_)

    def transform(self, values: pd.Series, root: Path, progress: Progress | None = None) -> Transformed:
        out = super().transform(values, root, progress)
        if self._ngram_settings is None:
            return out
        lexical = ngram_ids(values, self._ngram_index, self._ngram_settings, self.column)  # (N, L) long
        truncated = [p for p in lexical.problems if p.kind == TRUNCATED]
        if self.finetune:  # token ids at their full width, so the encoder knows where the n-grams start
            tokens = torch.full((len(values), self.max_length), -1, dtype=torch.long)
            tokens[:, : out.values.shape[1]] = out.values
            return Transformed(torch.cat([tokens, lexical.values], 1), out.present, out.problems + truncated)
        return Transformed(torch.cat([out.values, lexical.values.float()], 1), out.present, out.problems + truncated)

    def _content(self, value: Any, root: Path) -> bytes:
        return str(value).encode("utf-8")

    def _decode(self, content: bytes) -> Tensor:
        """The first ``max_length`` token ids; the tokenizer reads at most ``CHARS_PER_TOKEN`` characters a token of
        the text (it would hold every token of a 1 MB text only to keep 64)."""
        text = content.decode("utf-8")[: self.max_length * CHARS_PER_TOKEN]
        return torch.tensor(self._tok.encode(text).ids, dtype=torch.long)

    def _stack(self, decoded: list[Tensor | None]) -> Tensor:
        """Token ids (N, L) with -1 as padding (also for missing rows)."""
        width = max((len(d) for d in decoded if d is not None), default=1)
        ids = torch.full((len(decoded), width), -1, dtype=torch.long)
        for i, d in enumerate(decoded):
            if d is not None:
                ids[i, : len(d)] = d
        return ids

    def _split(self) -> int:
        """Where the n-gram ids start in a stored row: after the features, or the token ids when fine-tuned."""
        return self.max_length if self.finetune else self.feature_dim_

    def prepare_batch(self, x: Tensor, train: bool) -> Tensor:
        if self._ngram_settings is not None:  # the n-gram ids are left-aligned after the split: no copy needed
            return trim_padding(x, self._split())
        if not self.finetune:
            return x
        longest = int((x >= 0).sum(1).max().clamp(min=1))
        return x[:, :longest]

    def encoder_kwargs(self) -> dict[str, Any]:
        lexical = {"ngram_vocab_size": len(self.ngram_vocabulary_) + 1} if self._ngram_settings is not None else {}
        return {**super().encoder_kwargs(), **lexical}

    def flat(self, x: Tensor) -> FlatView:
        """Frozen: the backbone features; with n-grams, their ids too (fine-tuned: the n-gram ids only)."""
        split = self._split()
        ids = None if self._ngram_settings is None else x[:, split:].long()
        vocab = 0 if ids is None else len(self.ngram_vocabulary_) + 1
        return FlatView(embedding=None if self.finetune else x[:, :split].float(), ids=ids, vocab=vocab)

    def corruptions(self) -> dict[str, Corruption]:
        """Frozen: noise on the features; with n-grams, also n-gram drop (on the n-gram part only)."""
        if self._ngram_settings is None:
            return super().corruptions()
        split = self._split()
        deep = {} if self.finetune else {"feature noise": on_columns(feature_noise, 0, split)}
        return {**deep, "word drop": on_columns(drop_ngrams, split, None)}


class _PretrainedTextEncoder(ProjectedBackbone):
    """A pretrained text encoder with an optional lexical path: ``ngrams`` (``core.ngrams.NgramParams``: n,
    min_count, max_features, max_ngrams, dim) adds a learned bag of word n-gram embeddings (``nn.bag.NgramBag``)
    whose output is concatenated to the projection: (B, proj_dim + ngrams.dim). Its input rows carry the n-gram ids
    after the features (frozen) or after the ``max_length`` token ids (fine-tuned)."""

    def __init__(self, feature_dim: int, source: str | None = None, proj_dim: int = 256, finetune: bool = False,
                 norm: bool = False, dropout: float = 0.0, max_length: int = 64, ngrams: dict | None = None,
                 ngram_vocab_size: int = 0):
        super().__init__(feature_dim, TextBackbone(source) if finetune else None, proj_dim, norm, dropout)
        lexical = NgramParams(**ngrams) if ngrams is not None else None
        self.words = NgramBag(ngram_vocab_size, lexical.dim, lexical.bag_ngrams) if lexical is not None else None
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
