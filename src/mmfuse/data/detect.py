"""Infer each column's modality with the detection rules the modality plugins registered, check a user's
overrides against the data (the plugin's check rule), and note each column's traits (the plugin's traits rule)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..core.columns import ColumnInfo
from ..core.modality import SAMPLE, nonempty_strings
from ..core.sets import exploded, looks_like_set_cells
from ..errors import ConfigError, DataError
from ..registry import MODALITIES

ID_PRIORITY = 50  # between the registered rules: after numbers, lists and paths, before categories and text


def _looks_like_id(values: pd.Series) -> str | None:
    strings = nonempty_strings(values)
    if strings.nunique() == len(strings) and len(strings) >= 20 and strings.str.split().str.len().mean() <= 1.05:
        return "looks like an ID (every value unique, one word); --column-type to use it"
    return None


def detect_column(name: str, values: pd.Series) -> ColumnInfo:
    """Guess one column's modality: the first registered rule (in priority order) that claims its values."""
    if len(values.dropna()) == 0 or nonempty_strings(values).empty:
        return ColumnInfo(name, "ignore", "every value is empty")
    rules = [(spec.priority, spec.name, spec.detect) for spec in map(MODALITIES.get, MODALITIES.names()) if spec.detect]
    for _, modality, rule in sorted(rules + [(ID_PRIORITY, "ignore", _looks_like_id)], key=lambda r: r[0]):
        reason = rule(values)
        if reason:
            return ColumnInfo(name, modality, reason)
    return ColumnInfo(name, "ignore", "no modality recognised these values; --column-type to use it")


def detect_set(name: str, values: pd.Series, root: Path, sep: str | None = None) -> ColumnInfo | None:
    """A column of set cells (``core/sets.py``: JSON lists of strings, ``sep``-separated strings, folders, globs):
    its elements' modality, with the ``set`` trait; None if the cells are not sets of one ungrouped modality."""
    sample = values.head(SAMPLE)
    if sep is None and not looks_like_set_cells(sample, root):
        return None
    elements, rows = exploded(sample, root, sep)
    if elements.empty:
        return None
    info = detect_column(name, elements)
    if info.modality == "ignore" or MODALITIES.get(info.modality).grouped:
        return None
    per_row = len(elements) / max(1, len(set(rows)))
    return ColumnInfo(name, info.modality, f"{info.modality} set (~{per_row:.1f} per row): {info.reason}",
                      {"set": {"sep": sep} if sep else {}})


def check_override(name: str, values: pd.Series, modality: str, root: Path, sep: str | None = None) -> ColumnInfo:
    """Accept a user's ``--column-type`` only when the values (a set column's elements) can be read that way."""
    sets = modality != "ignore" and (sep is not None or looks_like_set_cells(values.head(SAMPLE), root))
    if modality != "ignore":
        if modality not in MODALITIES:
            raise ConfigError(f"--column-type {name}={modality}: unknown modality; choose from: "
                              f"{', '.join(MODALITIES.names() + ['ignore'])}")
        check = MODALITIES.get(modality).check
        if check:
            check(name, exploded(values.head(SAMPLE), root, sep)[0] if sets else values, root)
    return ColumnInfo(name, modality, "set by --column-type" + (" (a set per cell)" if sets else ""),
                      {"set": {"sep": sep} if sep else {}} if sets else {})


def detect_columns(frame: pd.DataFrame, label: str | list[str], root: Path, overrides: dict[str, str] | None = None,
                   ignore: list[str] | None = None, set_seps: dict[str, str] | None = None) -> list[ColumnInfo]:
    """Decide every non-label column's modality; overrides, ``ignore`` and ``set_seps`` (column -> the separator
    of its set cells) name columns that must exist."""
    overrides, ignore, set_seps = overrides or {}, ignore or [], set_seps or {}
    labels = [label] if isinstance(label, str) else label
    for col in [*overrides, *ignore, *set_seps]:
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
            infos.append(check_override(col, frame[col], overrides[col], root, set_seps.get(col)))
        else:
            infos.append(detect_set(col, frame[col], root, set_seps.get(col)) or detect_column(col, frame[col]))
    if all(i.modality == "ignore" for i in infos):
        raise DataError("no usable input columns: every column is the label or ignored")
    return [with_traits(info, frame[info.name], root) for info in infos]


def with_traits(info: ColumnInfo, values: pd.Series, root: Path) -> ColumnInfo:
    """The column with its modality plugin's traits of its values (of a set column: of its elements; none for
    ignored columns)."""
    rule = None if info.modality == "ignore" else MODALITIES.get(info.modality).traits
    if "set" in info.traits:
        values = exploded(values.head(SAMPLE), root, info.traits["set"].get("sep"))[0]
    return replace(info, traits={**info.traits, **rule(values, root)}) if rule else info
