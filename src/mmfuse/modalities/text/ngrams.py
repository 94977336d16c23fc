"""The ``ngrams`` text encoder and its processor ``ngram_text``: each text as the ids of its distinct word
1..n-grams over a vocabulary learned on train (``core.ngrams``), read by a learned bag of n-gram embeddings
(``nn.bag.NgramBag``). Fast, and as strong as a linear model on n-grams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from torch import Tensor

from ...core.ngrams import drop_ngrams, fit_vocabulary, ngram_ids, ngram_index, ngram_settings
from ...core.processor import Corruption, FlatView, Processor, Progress, Transformed, trim_padding
from ...nn.bag import NgramBag
from ...registry import ENCODERS
from .processor import MAX_TEXT_CHARS


class NgramProcessor(Processor):
    """Text -> (N, L) ids of its distinct known word n-grams, 0 = padding."""

    kind, modality = "ngram_text", "text"
    max_chars = MAX_TEXT_CHARS
    ragged = True  # ids trimmed to the batch's longest row

    def __init__(self, column: str, n: int = 2, chars: list[int] | tuple[int, ...] = (2, 5), min_count: int = 2,
                 max_features: int = 50_000, max_ngrams: int = 4096):
        self.column, self.n, self.chars, self.min_count = column, n, list(chars), min_count
        self.max_features, self.max_ngrams = max_features, max_ngrams
        self._settings = ngram_settings(column, {"n": n, "chars": self.chars, "min_count": min_count,
                                                  "max_features": max_features, "max_ngrams": max_ngrams})

    def fit(self, values: pd.Series, root: Path, progress: Progress | None = None) -> "NgramProcessor":
        self.vocabulary_ = fit_vocabulary(values, self._settings)
        self._setup()
        return self

    def _setup(self) -> None:
        self._index = ngram_index(self.vocabulary_)

    def transform(self, values: pd.Series, root: Path, progress: Progress | None = None) -> Transformed:
        return ngram_ids(values, self._index, self._settings, self.column)

    def prepare_batch(self, x: Tensor, train: bool) -> Tensor:
        return trim_padding(x)

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"vocab_size": len(self.vocabulary_) + 1}

    def flat(self, x: Tensor) -> FlatView:
        return FlatView(ids=x, vocab=len(self.vocabulary_) + 1)

    def corruptions(self) -> dict[str, Corruption]:
        return {"word drop": drop_ngrams}


@ENCODERS.register("ngrams", modality="text", processor="ngram_text")
class NgramEncoder(NgramBag):
    """Word (and char) n-gram bag, fastText-style: (B, L) ids -> (B, dim). Params: dim, bag_ngrams (the first n-grams
    of a text it reads; None: all); n, chars, min_count, max_features and max_ngrams are the processor's
    (``core.ngrams.NgramParams``)."""

    def __init__(self, vocab_size: int, dim: int = 64, bag_ngrams: int | None = None, **processor_settings: Any):
        super().__init__(vocab_size, dim, bag_ngrams)
