"""Word n-grams, the lexical path's data side: what a TF-IDF + linear model reads, for a learned bag of n-gram
embeddings (``nn.bag.NgramBag``) to read instead.

A vocabulary of the word 1..n-grams that occur in at least ``min_count`` training texts (the ``max_features`` most
frequent), and each text as the ids of its distinct known n-grams (N, L), 0 = padding. Shared by the text plugin's
``ngrams`` encoder and the pretrained text encoders' ``ngrams`` parameter, so the plugins need not import each other.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from typing import Any, Iterable, Iterator

import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from torch import Tensor

from ..errors import ConfigError
from .modality import is_empty
from .processor import EMPTY, TRUNCATED, Problem, Transformed

WORD = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern


class NgramParams(BaseModel):
    """The ``ngrams`` settings: which n-grams make the vocabulary, how many a text keeps, the embedding width."""

    model_config = ConfigDict(extra="forbid")
    n: int = Field(2, ge=1, le=4)               # word 1..n-grams
    chars: list[int] = Field(default_factory=lambda: [2, 5])  # char n-grams inside words, [lo, hi]; [] = none
    min_count: int = Field(2, ge=1)             # in at least this many training texts
    max_features: int = Field(50_000, ge=1)     # the most frequent kept (each costs dim parameters to train)
    max_ngrams: int = Field(4096, ge=1)         # distinct n-grams kept per text (a longer text is cut, and reported)
    bag_ngrams: int | None = Field(None, ge=1)  # of those, the network's bag reads the first ones (None: all of them)
    dim: int = Field(64, ge=1)                  # embedding width (the encoder's)

    @field_validator("chars")
    @classmethod
    def _range(cls, chars: list[int]) -> list[int]:
        if chars and (len(chars) != 2 or not 1 <= chars[0] <= chars[1] <= 8):
            raise ValueError("chars must be [] or [lo, hi] with 1 <= lo <= hi <= 8")
        return chars


def ngram_settings(column: str, settings: dict) -> NgramParams:
    """Validated ``ngrams`` settings of a column's encoder; a bad one is a ConfigError naming the column."""
    try:
        return NgramParams(**settings)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"column {column!r}: ngrams.{where}: {first['msg']}") from None


def iter_ngrams(text: str, params: NgramParams) -> Iterator[str]:
    """Distinct n-grams of a text, lowercased: word 1..n-grams, then (with ``chars``) character n-grams inside
    space-padded words (as scikit-learn's ``char_wb``, marked with a leading ``#``), each in order of first
    occurrence; one at a time (a long text's repeats are never all held)."""
    text = text.lower()
    words = WORD.findall(text)
    seen: set[str] = set()
    for k in range(1, params.n + 1):
        for i in range(len(words) - k + 1):
            gram = " ".join(words[i:i + k])
            if gram not in seen:
                seen.add(gram)
                yield gram
    if params.chars:
        lo, hi = params.chars
        for word in text.split():
            padded = f" {word} "
            for k in range(lo, hi + 1):
                for i in range(len(padded) - k + 1):
                    gram = "#" + padded[i:i + k]
                    if gram not in seen:
                        seen.add(gram)
                        yield gram


def ngrams_of(text: str, params: NgramParams) -> list[str]:
    """``iter_ngrams`` as a list."""
    return list(iter_ngrams(text, params))


def fit_vocabulary(values: Iterable[Any], params: NgramParams) -> list[str]:
    """The kept n-grams of the non-empty training values, most frequent first (ties alphabetical); an n-gram's id
    is its position + 1 (``ngram_index``)."""
    counts = Counter(g for v in values if not is_empty(v) for g in ngrams_of(str(v), params))
    kept = sorted((g for g, c in counts.items() if c >= params.min_count), key=lambda g: (-counts[g], g))
    return kept[: params.max_features]


def ngram_index(vocabulary: list[str]) -> dict[str, int]:
    """n-gram -> id (1-based; 0 is padding)."""
    return {g: i + 1 for i, g in enumerate(vocabulary)}


def ngram_ids(values: pd.Series, index: dict[str, int], params: NgramParams, column: str) -> Transformed:
    """(N, L) long ids of each text's distinct known n-grams (L: the longest row, at most ``max_ngrams``).

    An empty text is absent (reported); a text with more known n-grams than ``max_ngrams`` keeps the first ones
    (unigrams come first; the rest are not looked for) and is reported as truncated.
    """
    rows, problems = [], []
    present = torch.ones(len(values), dtype=torch.bool)
    for i, v in enumerate(values):
        if is_empty(v):
            present[i] = False
            problems.append(Problem(i, column, EMPTY, "empty text"))
            rows.append([])
            continue
        known = (index[g] for g in iter_ngrams(str(v), params) if g in index)
        ids = list(itertools.islice(known, params.max_ngrams + 1))
        if len(ids) > params.max_ngrams:
            problems.append(Problem(i, column, TRUNCATED, f"more than {params.max_ngrams} known n-grams, kept the "
                                                          "first ones"))
            ids = ids[: params.max_ngrams]
        rows.append(ids)
    out = torch.zeros(len(values), max([1, *map(len, rows)]), dtype=torch.long)
    for i, ids in enumerate(rows):
        out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return Transformed(out, present, problems)


def drop_ngrams(ids: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """Corruption: each n-gram of (B, L) ids is removed (set to padding) with probability ``level``."""
    return ids.masked_fill(torch.rand(ids.shape, generator=gen) < level, 0)
