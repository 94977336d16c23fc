"""Numeric, date/time and categorical columns, which share one ``tabular`` input; encoder mlp (numbers + category
embeddings).

Detection: numbers (or strings that parse as numbers) are numeric; dates and times (ISO 8601 such as 2024-03-01 or
2024-03-01T14:30:00Z, 03/01/2024, 1 March 2024, or a datetime dtype; words and bare numbers are not: ``dates``) are
datetime, read as five numbers each; true/false values
and short values with few distinct ones are categorical.
"""

from __future__ import annotations

from pathlib import Path

import re

import pandas as pd

from ...core.modality import Cell, Modality, SAMPLE, nonempty_strings
from ...errors import DataError
from ...registry import MODALITIES, PROCESSORS
from . import encoders  # noqa: F401  (registers the encoder)
from .dates import parse_datetimes, readable_share
from .processor import TabularProcessor


def _numeric_share(values: pd.Series) -> float:
    sample = nonempty_strings(values).head(SAMPLE)
    return float(pd.to_numeric(sample, errors="coerce").notna().mean()) if len(sample) else 0.0


def looks_numeric(values: pd.Series) -> str | None:
    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_numeric_dtype(values):
        return f"numbers ({values.dropna().nunique()} distinct)"
    return "strings that parse as numbers" if _numeric_share(values) >= 0.95 else None


def looks_categorical(values: pd.Series) -> str | None:
    if pd.api.types.is_bool_dtype(values):
        return "true/false values"
    strings = nonempty_strings(values)
    n_unique = strings.nunique()
    if strings.str.split().str.len().mean() <= 3 and n_unique <= max(20, 0.1 * len(strings)):
        return f"{n_unique} distinct short values"
    return None


def looks_like_datetimes(values: pd.Series) -> str | None:
    if pd.api.types.is_datetime64_any_dtype(values):
        return "datetime values"
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    sample = nonempty_strings(values).head(SAMPLE)
    if len(sample) and readable_share(sample) >= 0.95:
        return "dates / times"
    return None


def check_datetimes(name: str, values: pd.Series, root: Path) -> None:
    strings = nonempty_strings(values).head(SAMPLE)
    parsed = parse_datetimes(strings)
    if len(strings) and parsed.notna().mean() < 0.5:
        raise DataError(f"column {name!r} was set to datetime, but most values are not dates or times "
                        f"(e.g. {strings[parsed.isna()].iloc[0]!r})")


def check_numeric(name: str, values: pd.Series, root: Path) -> None:
    strings = nonempty_strings(values).head(SAMPLE)
    if len(strings) and _numeric_share(values) < 0.5:
        example = strings[pd.to_numeric(strings, errors="coerce").isna()].iloc[0]
        raise DataError(f"column {name!r} was set to numeric, but most values are not numbers (e.g. {example!r})")


PROCESSORS.add(TabularProcessor.kind, TabularProcessor)
MODALITIES.add("numeric", Modality("numeric", input="tabular", processor="tabular", default_encoder="mlp",
                                   detect=looks_numeric, priority=40, check=check_numeric, grouped=True,
                                   cell=Cell(widget="number")))
MODALITIES.add("datetime", Modality("datetime", input="tabular", processor="tabular", default_encoder="mlp",
                                    detect=looks_like_datetimes, priority=45, check=check_datetimes, grouped=True,
                                    cell=Cell(widget="date", hint="2024-03-01T14:30:00")))
MODALITIES.add("categorical", Modality("categorical", input="tabular", processor="tabular", default_encoder="mlp",
                                       detect=looks_categorical, priority=60, grouped=True,
                                       cell=Cell(widget="select")))
