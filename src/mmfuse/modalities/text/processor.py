"""Text -> token ids (N, max_length), 0 = padding, through a word / WordPiece / BPE vocabulary learned on train."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from ...core.modality import is_empty
from ...core.processor import EMPTY, Corruption, FlatView, Problem, Processor, Progress, Transformed, trim_padding
from .corruptions import text_typos, text_word_drop

# characters in one text cell (a 500-page book): a tokenizer handed 200 MB of text runs out of memory or aborts
MAX_TEXT_CHARS = 1_000_000


class TextParams(BaseModel):
    """``preprocess.text`` settings."""

    model_config = ConfigDict(extra="forbid")
    tokenizer: Literal["word", "wordpiece", "bpe"] = "word"
    vocab_size: int = Field(10000, ge=10)
    max_length: int = Field(64, ge=1)
    lowercase: bool = True


class TextProcessor(Processor):
    """Token ids via a ``tokenizers`` vocabulary (id 0 = [PAD], 1 = [UNK]), truncated to ``max_length``."""

    kind, modality, Params = "text", "text", TextParams
    max_chars = MAX_TEXT_CHARS
    ragged = True  # ids trimmed to the batch's longest row

    def __init__(self, column: str, tokenizer: str = "word", vocab_size: int = 10000, max_length: int = 64,
                 lowercase: bool = True):
        self.column, self.tokenizer, self.vocab_size = column, tokenizer, vocab_size
        self.max_length, self.lowercase = max_length, lowercase

    def fit(self, values: pd.Series, root: Path, progress: Progress | None = None) -> "TextProcessor":
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

        special = ["[PAD]", "[UNK]"]
        model, trainer = {
            "word": (models.WordLevel(unk_token="[UNK]"), trainers.WordLevelTrainer),
            "wordpiece": (models.WordPiece(unk_token="[UNK]"), trainers.WordPieceTrainer),
            "bpe": (models.BPE(unk_token="[UNK]"), trainers.BpeTrainer),
        }[self.tokenizer]
        tok = Tokenizer(model)
        norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if self.lowercase else [])
        tok.normalizer = normalizers.Sequence(norms)
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        texts = [str(v) for v in values if not is_empty(v)]
        tok.train_from_iterator(texts, trainer(vocab_size=self.vocab_size, special_tokens=special, show_progress=False))
        self.tokenizer_json_ = tok.to_str()
        self._setup()
        return self

    def _setup(self) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_str(self.tokenizer_json_)
        self._tok.enable_truncation(self.max_length)

    def transform(self, values: pd.Series, root: Path, progress: Progress | None = None) -> Transformed:
        ids = torch.zeros(len(values), self.max_length, dtype=torch.long)  # (N, L), 0 = [PAD]
        present = torch.ones(len(values), dtype=torch.bool)
        problems, texts, rows = [], [], []
        for i, v in enumerate(values):
            if is_empty(v):
                present[i] = False
                problems.append(Problem(i, self.column, EMPTY, "empty text"))
            else:
                texts.append(str(v))
                rows.append(i)
        for i, enc in zip(rows, self._tok.encode_batch(texts)):
            ids[i, : len(enc.ids)] = torch.tensor(enc.ids, dtype=torch.long)
        return Transformed(ids, present, problems)

    def prepare_batch(self, x: Tensor, train: bool) -> Tensor:
        return trim_padding(x)  # drop padding columns no row in this batch uses

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"vocab_size": self._tok.get_vocab_size(), "max_length": self.max_length}

    def flat(self, x: Tensor) -> FlatView:
        return FlatView(ids=x, vocab=self._tok.get_vocab_size())

    def corruptions(self) -> dict[str, Corruption]:
        return {"typos": text_typos, "word drop": text_word_drop}
