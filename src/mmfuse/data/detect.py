"""Infer each column's modality (text, image / audio / .npy path, numeric list, number, category) and check user
overrides against the data."""

from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import MODALITIES
from ..errors import ConfigError, DataError
from .audio import AUDIO_SUFFIXES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SEQUENCE_SUFFIXES = (".npy",)
SAMPLE = 200


@dataclass(frozen=True)
class ColumnInfo:
    """What detection decided for one column and why (shown to the user before training)."""

    name: str
    modality: str
    reason: str


def _strings(values: pd.Series) -> pd.Series:
    return values.dropna().astype(str).str.strip().loc[lambda s: s != ""]


def _looks_like_paths(values: pd.Series, suffixes: tuple[str, ...]) -> float:
    sample = _strings(values).head(SAMPLE)
    return float(sample.str.lower().str.endswith(suffixes).mean()) if len(sample) else 0.0


def _numeric_list_share(values: pd.Series) -> float:
    """Share of cells that are lists of numbers (Python lists / arrays, or JSON list strings)."""
    sample = values.dropna().head(SAMPLE)

    def is_numeric_list(cell) -> bool:
        if isinstance(cell, str):
            if not cell.strip().startswith("["):
                return False
            try:
                cell = json.loads(cell)
            except json.JSONDecodeError:
                return False
        try:
            return len(cell) > 0 and np.asarray(cell, dtype=float).ndim in (1, 2)
        except (TypeError, ValueError):
            return False

    return float(np.mean([is_numeric_list(c) for c in sample])) if len(sample) else 0.0


def _numeric_share(values: pd.Series) -> float:
    sample = _strings(values).head(SAMPLE)
    return float(pd.to_numeric(sample, errors="coerce").notna().mean()) if len(sample) else 0.0


def detect_column(name: str, values: pd.Series) -> ColumnInfo:
    """Guess one column's modality from its values."""
    present = values.dropna()
    if len(present) == 0 or _strings(values).empty:
        return ColumnInfo(name, "ignore", "every value is empty")
    if pd.api.types.is_bool_dtype(values):
        return ColumnInfo(name, "categorical", "true/false values")
    if pd.api.types.is_numeric_dtype(values):
        return ColumnInfo(name, "numeric", f"numbers ({present.nunique()} distinct)")
    if _numeric_list_share(values) >= 0.8:
        return ColumnInfo(name, "sequence", "lists of numbers")
    for modality, suffixes in (("image", IMAGE_SUFFIXES), ("audio", AUDIO_SUFFIXES), ("sequence", SEQUENCE_SUFFIXES)):
        if _looks_like_paths(values, suffixes) >= 0.8:
            return ColumnInfo(name, modality, f"paths ending in {'/'.join(suffixes[:3])}")
    if _numeric_share(values) >= 0.95:
        return ColumnInfo(name, "numeric", "strings that parse as numbers")
    strings = _strings(values)
    n_unique = strings.nunique()
    words = strings.str.split().str.len().mean()
    if n_unique == len(strings) and len(strings) >= 20 and words <= 1.05:
        return ColumnInfo(name, "ignore", "looks like an ID (every value unique, one word); --column-type to use it")
    if words <= 3 and n_unique <= max(20, 0.1 * len(strings)):
        return ColumnInfo(name, "categorical", f"{n_unique} distinct short values")
    return ColumnInfo(name, "text", f"free text (~{words:.1f} words per value)")


def check_override(name: str, values: pd.Series, modality: str, root: Path) -> ColumnInfo:
    """Accept a user's ``--column-type`` only when the values can actually be read that way."""
    if modality not in MODALITIES:
        raise ConfigError(f"--column-type {name}={modality}: unknown modality; choose from: {', '.join(MODALITIES)}")
    strings = _strings(values).head(SAMPLE)
    if modality == "numeric" and len(strings) and _numeric_share(values) < 0.5:
        example = strings[pd.to_numeric(strings, errors="coerce").isna()].iloc[0]
        raise DataError(f"column {name!r} was set to numeric, but most values are not numbers (e.g. {example!r})")
    if modality in ("image", "audio") and len(strings):
        found = sum((root / p).is_file() or Path(p).is_file() for p in strings.head(50))
        if found == 0:
            raise DataError(f"column {name!r} was set to {modality}, but none of its first values is an existing "
                            f"file (e.g. {strings.iloc[0]!r}, looked in {root})")
    return ColumnInfo(name, modality, "set by --column-type")


def detect_columns(frame: pd.DataFrame, label: str | list[str], root: Path, overrides: dict[str, str] | None = None,
                   ignore: list[str] | None = None) -> list[ColumnInfo]:
    """Decide every non-label column's modality; overrides and ``ignore`` name columns that must exist."""
    overrides, ignore = overrides or {}, ignore or []
    labels = [label] if isinstance(label, str) else label
    for col in [*overrides, *ignore]:
        if col not in frame.columns:
            raise DataError(f"column {col!r} (named in --column-type/--ignore) is not in the table; "
                            f"columns are: {', '.join(map(str, frame.columns))}")
    infos = []
    for col in frame.columns:
        if col in labels:
            continue
        if col in ignore:
            infos.append(ColumnInfo(col, "ignore", "--ignore"))
        elif col in overrides:
            infos.append(check_override(col, frame[col], overrides[col], root))
        else:
            infos.append(detect_column(col, frame[col]))
    if all(i.modality == "ignore" for i in infos):
        raise DataError("no usable input columns: every column is the label or ignored")
    return infos
