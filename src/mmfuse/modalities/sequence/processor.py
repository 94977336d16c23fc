"""Numeric sequences (a .npy file of shape (T, D) or (T,), or a list-valued cell) -> (N, T, D + 1) frames, padded to
the longest training sequence (at most ``max_length``); longer ones are cut and reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from ...core.frames import FrameProcessor
from ...core.processor import is_empty, resolve_path


def read_npy(path: Path) -> np.ndarray:
    """A .npy file -> float32 array; anything else (an .npz archive, an empty or truncated file, a pickled or
    non-numeric array) is a ValueError saying what was found."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except EOFError:
        raise ValueError("the file is empty") from None
    except (ValueError, TypeError, UnicodeDecodeError) as err:  # a text file, a pickle, a damaged header
        raise ValueError(f"not a .npy array ({err})") from None
    if not isinstance(loaded, np.ndarray):
        loaded.close()
        raise ValueError("an .npz archive, not a .npy array")
    if loaded.dtype.kind not in "biuf":
        raise ValueError(f"holds {loaded.dtype} values, not numbers")
    return loaded.astype(np.float32)


class SequenceParams(BaseModel):
    """``preprocess.sequence`` settings."""

    model_config = ConfigDict(extra="forbid")
    max_length: int = Field(256, ge=1)


class SequenceProcessor(FrameProcessor):
    kind, modality, Params = "sequence", "sequence", SequenceParams

    def __init__(self, column: str, max_length: int = 256):
        self.column, self.max_length = column, max_length
        self.length_, self.n_features_ = 1, 1

    def _n_features(self) -> int:
        return self.n_features_

    def _length(self) -> int:
        return self.length_

    def _read(self, value: Any, root: Path) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, refused below
            if isinstance(value, (list, tuple, np.ndarray)):
                array = np.asarray(value, dtype=np.float32)
            elif str(value).strip().startswith("["):
                array = np.asarray(json.loads(str(value)), dtype=np.float32)
            else:
                array = read_npy(resolve_path(value, root))
        array = array[:, None] if array.ndim == 1 else array
        if array.ndim != 2 or len(array) == 0:
            raise ValueError(f"expected a non-empty (steps, features) array, got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError("holds NaN or infinite values")
        return array

    def _prepare_fit(self, values: pd.Series, root: Path) -> None:
        lengths, widths = [], []
        for v in values.head(2000):
            if is_empty(v):
                continue
            try:
                array = self._read(v, root)
            except (OSError, ValueError):
                continue
            lengths.append(len(array))
            widths.append(array.shape[1])
        if widths:
            self.n_features_ = max(set(widths), key=widths.count)
            self.length_ = min(max(lengths), self.max_length)

    def _frames(self, value: Any, root: Path) -> tuple[np.ndarray, str | None]:
        array = self._read(value, root)
        if array.shape[1] != self.n_features_:
            raise ValueError(f"expected {self.n_features_} features per step, got {array.shape[1]}")
        note = f"{len(array)} steps cut to {self.length_}" if len(array) > self.length_ else None
        return array, note
