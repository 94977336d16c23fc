"""Numeric and categorical columns, which share one ``tabular`` input; encoder mlp (numbers + category embeddings).

Detection: numbers (or strings that parse as numbers) are numeric; true/false values and short values with few
distinct ones are categorical.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...core.modality import SAMPLE, Modality, nonempty_strings
from ...errors import DataError
from ...registry import MODALITIES, PROCESSORS
from . import encoders  # noqa: F401  (registers the encoder)
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


def check_numeric(name: str, values: pd.Series, root: Path) -> None:
    strings = nonempty_strings(values).head(SAMPLE)
    if len(strings) and _numeric_share(values) < 0.5:
        example = strings[pd.to_numeric(strings, errors="coerce").isna()].iloc[0]
        raise DataError(f"column {name!r} was set to numeric, but most values are not numbers (e.g. {example!r})")


PROCESSORS.add(TabularProcessor.kind, TabularProcessor)
MODALITIES.add("numeric", Modality("numeric", input="tabular", processor="tabular", default_encoder="mlp",
                                   detect=looks_numeric, priority=40, check=check_numeric, grouped=True))
MODALITIES.add("categorical", Modality("categorical", input="tabular", processor="tabular", default_encoder="mlp",
                                       detect=looks_categorical, priority=60, grouped=True))
