"""Text columns: free text, tokenised with a vocabulary learned on train; encoders lstm, gru, transformer, bow,
ngrams (a word n-gram bag with its own processor), and the pretrained minilm and text_hf (the backbone's tokenizer,
frozen features cached: the ``pretrained_text`` processor).

Detection: the fallback rule, for any column no other modality claims.
"""

from __future__ import annotations

import pandas as pd

from ...core.modality import Modality, nonempty_strings
from ...registry import MODALITIES, PROCESSORS
from . import encoders  # noqa: F401  (registers the encoders)
from .ngrams import NgramProcessor
from .pretrained import PretrainedTextProcessor
from .processor import TextProcessor


def looks_like_text(values: pd.Series) -> str:
    words = nonempty_strings(values).str.split().str.len().mean()
    return f"free text (~{words:.1f} words per value)"


PROCESSORS.add(TextProcessor.kind, TextProcessor)
PROCESSORS.add(NgramProcessor.kind, NgramProcessor)
PROCESSORS.add(PretrainedTextProcessor.kind, PretrainedTextProcessor)
MODALITIES.add("text", Modality("text", input="text", processor="text", default_encoder="gru",
                                detect=looks_like_text, priority=1000))  # a value cell, a text field
