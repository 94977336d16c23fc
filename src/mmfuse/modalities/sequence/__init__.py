"""Sequence columns: numeric sequences as list-valued cells (or JSON lists) or .npy files of shape (T, D); encoders
seq_conv (the default), seq_gru, seq_lstm (the adapted seed's LSTM)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...core.modality import Cell, Modality, SAMPLE, path_share
from ...io.bounded_json import loads
from ...registry import MODALITIES, PROCESSORS
from . import encoders  # noqa: F401  (registers the encoders)
from .processor import SequenceProcessor


def _is_numeric_list(cell) -> bool:
    if isinstance(cell, str):
        if not cell.strip().startswith("["):
            return False
        try:
            cell = loads(cell, "cell", max_depth=2)
        except ValueError:
            return False
    try:
        return len(cell) > 0 and np.asarray(cell, dtype=float).ndim in (1, 2)
    except (TypeError, ValueError):
        return False


def looks_like_sequences(values: pd.Series) -> str | None:
    """Lists of numbers (Python lists / arrays, or JSON list strings), or paths to .npy files."""
    sample = values.dropna().head(SAMPLE)
    if len(sample) and np.mean([_is_numeric_list(c) for c in sample]) >= 0.8:
        return "lists of numbers"
    return "paths ending in .npy" if path_share(values, (".npy",)) >= 0.8 else None


PROCESSORS.add(SequenceProcessor.kind, SequenceProcessor)
MODALITIES.add("sequence", Modality("sequence", input="sequence", processor="sequence", default_encoder="seq_conv",
                                    detect=looks_like_sequences, priority=20,
                                    cell=Cell(file=True, suffix=".npy", lists=True, hint="[[0.1, 0.2], [0.3, 0.4]]")))
