"""Numeric sequences (a .npy file of shape (T, D) or (T,), or a list-valued cell) -> (N, T, D + 1) frames, padded to
the longest training sequence (at most ``max_length``); longer ones are cut and reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from ...core.frames import FrameProcessor
from ...core.modality import file_cell, is_empty
from ...io.bounded_json import loads
from ...io.npy import MAX_NPY_BYTES, npy_header


def read_npy(path: Path, max_bytes: int = MAX_NPY_BYTES) -> np.ndarray:
    """A .npy file -> float32 array; anything else (an .npz archive, an empty or truncated file, a pickled or
    non-numeric array, a header claiming more than ``max_bytes`` or than the file holds) is a ValueError saying
    what was found (``io.npy``). The header is checked before the array is allocated."""
    with open(path, "rb") as f:
        shape, fortran, dtype = npy_header(f, path.stat().st_size, max_bytes)
        loaded = np.fromfile(f, dtype=dtype, count=int(np.prod(shape))).reshape(shape, order="F" if fortran else "C")
    return loaded.astype(np.float32)


def parse_sequence(value: Any) -> np.ndarray:
    """A list-valued cell (a list, an array, or a JSON list string) -> float array; ValueError if it is not a list
    of numbers or of equal-length lists of numbers (a JSON object, text, deeper nesting, a damaged string)."""
    if isinstance(value, str):
        value = loads(value, "the sequence cell", max_depth=2)
    if isinstance(value, dict):
        raise ValueError("holds a JSON object, not a list of numbers")
    try:
        return np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as err:
        reason = str(err).split(". ")[0]  # numpy's first sentence: "setting an array element with a sequence"
        raise ValueError(f"not a list of numbers or of equal-length lists of numbers ({reason})") from None


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
            if isinstance(value, (list, tuple, np.ndarray, dict)) or str(value).strip()[:1] in ("[", "{"):
                array = parse_sequence(value if not isinstance(value, str) else value.strip())
            else:
                array = read_npy(file_cell(value, root))
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
