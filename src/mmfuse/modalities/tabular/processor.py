"""Numeric, date/time and categorical columns -> one float input (N, 2 * n_numbers + n_categorical).

Numeric: median-imputed, standardised value + a 0/1 missing indicator per column; a value that is not a finite
number (text, inf) is unreadable and imputed the same way, and a standardised value beyond +-CLIP is clipped and
reported. Date/time: five numbers per column (``DATE_PARTS``: year, month, weekday, hour, days since 1970-01-01,
in UTC; a time without a zone is read as UTC), each handled as a numeric column; a value that is not a date/time is
unreadable, as a non-number is. Categorical: ids stored as floats, 0 = missing, 1 = unseen category, 2.. =
categories seen in training.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ...core.columns import ColumnInfo
from ...core.modality import is_empty
from ...core.processor import (EMPTY, TRUNCATED, UNKNOWN, UNREADABLE, Corruption, FlatView, Problem, Processor,
                               Progress, Transformed)
from .corruptions import TabularCorruptions

CLIP = 1e4  # standard deviations from the training mean
DATE_PARTS = ("year", "month", "weekday", "hour", "days")


def parse_datetimes(values: pd.Series) -> pd.Series:
    """Cells -> UTC timestamps, NaT where a cell is empty or not a date/time (ISO 8601 first, then any format)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
    strings = values.where(values.notna(), None).astype(object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format": expected for mixed columns
        parsed = pd.to_datetime(strings, errors="coerce", utc=True, format="ISO8601")
        retry = parsed.isna() & strings.notna()
        if retry.any():
            parsed[retry] = pd.to_datetime(strings[retry].astype(str), errors="coerce", utc=True, format="mixed")
    return parsed


def date_parts(values: pd.Series) -> pd.DataFrame:
    """A date/time column -> its ``DATE_PARTS`` as float columns named ``<column>:<part>`` (NaN where unreadable)."""
    when = parse_datetimes(values)
    days = (when - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(days=1)
    parts = {"year": when.dt.year, "month": when.dt.month, "weekday": when.dt.day_of_week, "hour": when.dt.hour,
             "days": days}
    return pd.DataFrame({f"{values.name}:{p}": parts[p].astype(float) for p in DATE_PARTS}, index=values.index)


def finite_numbers(values: pd.Series) -> pd.Series:
    """Cells -> float, NaN where a cell is empty, not a number, or not finite (inf, -inf, 1e999)."""
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    return numbers.where(np.isfinite(numbers))


class TabularProcessor(Processor):
    kind, modality = "tabular", "tabular"

    def __init__(self, numeric: list[str], categorical: list[str], datetime: list[str] | None = None):
        self.numeric, self.categorical, self.datetime = list(numeric), list(categorical), list(datetime or [])

    @classmethod
    def for_input(cls, columns: list[ColumnInfo], settings: dict[str, Any]) -> "TabularProcessor":
        return cls([c.name for c in columns if c.modality == "numeric"],
                   [c.name for c in columns if c.modality == "categorical"],
                   [c.name for c in columns if c.modality == "datetime"])

    def input_values(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[self.numeric + self.datetime + self.categorical]

    def _numbers(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The numeric columns, then each date/time column's parts: the columns standardised as numbers."""
        return pd.concat([frame[self.numeric], *(date_parts(frame[col]) for col in self.datetime)], axis=1)

    def fit(self, frame: pd.DataFrame, root: Path, progress: Progress | None = None) -> "TabularProcessor":
        self.medians_, self.means_, self.stds_ = [], [], []
        numbers_frame = self._numbers(frame)
        for col in numbers_frame.columns:
            numbers = finite_numbers(numbers_frame[col])
            median = float(numbers.median()) if numbers.notna().any() else 0.0
            filled = numbers.fillna(median)
            self.medians_.append(median)
            mean = float(filled.mean())
            self.means_.append(mean if np.isfinite(mean) else 0.0)
            std = float(filled.std(ddof=0))
            self.stds_.append(std if np.isfinite(std) and std > 0 else 1.0)
        self.categories_ = [[str(c) for c in frame[col].dropna().astype(str).value_counts().index]
                            for col in self.categorical]
        self._setup()
        return self

    def _setup(self) -> None:
        self._ids = [{c: i + 2 for i, c in enumerate(cats)} for cats in self.categories_]

    def transform(self, frame: pd.DataFrame, root: Path, progress: Progress | None = None) -> Transformed:
        n = len(frame)
        parts, problems = [], []
        numbers_frame = self._numbers(frame)
        for j, name in enumerate(numbers_frame.columns):
            col, part = (name, None) if j < len(self.numeric) else name.rsplit(":", 1)
            raw = frame[col]
            numbers = finite_numbers(numbers_frame[name])
            empty = raw.isna() | raw.astype(str).str.strip().eq("")
            for i in np.flatnonzero(numbers.isna().to_numpy()) if part in (None, DATE_PARTS[0]) else ():
                kind = EMPTY if empty.iloc[i] else UNREADABLE
                what = "number" if part is None else "date/time"
                detail = f"missing {what}" if kind == EMPTY else \
                    f"not a {'finite number' if part is None else what}: {raw.iloc[i]!r}"
                problems.append(Problem(int(i), col, kind, f"{detail} (median imputed)"))
            missing = numbers.isna().to_numpy()
            with np.errstate(over="ignore", invalid="ignore"):
                scaled = (numbers.fillna(self.medians_[j]).to_numpy() - self.means_[j]) / self.stds_[j]
            for i in np.flatnonzero(~(np.abs(scaled) <= CLIP)):
                problems.append(Problem(int(i), col, TRUNCATED, f"{raw.iloc[i]!r} is over {CLIP:g} standard deviations "
                                                               "from the training mean (clipped)"))
            parts += [np.clip(np.nan_to_num(scaled, nan=0.0), -CLIP, CLIP), missing.astype(float)]
        for j, col in enumerate(self.categorical):
            ids = np.zeros(n)
            for i, v in enumerate(frame[col]):
                if is_empty(v):
                    problems.append(Problem(i, col, EMPTY, "missing category"))
                else:
                    ids[i] = self._ids[j].get(str(v), 1)
                    if ids[i] == 1:
                        problems.append(Problem(i, col, UNKNOWN, f"category {v!r} not seen in training"))
            parts.append(ids)
        values = torch.tensor(np.stack(parts, axis=1), dtype=torch.float32)  # (N, 2 * n_num + n_cat)
        return Transformed(values, torch.ones(n, dtype=torch.bool), problems)

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"num_numeric": 2 * len(self.medians_), "cardinalities": [len(c) + 2 for c in self.categories_]}

    def flat(self, x: Tensor) -> FlatView:
        """Standardised numbers with their missing flags, and the category ids (B, C)."""
        numbers = 2 * len(self.medians_)
        return FlatView(dense=x[:, :numbers], categories=x[:, numbers:].long(),
                        cardinalities=tuple(len(c) + 2 for c in self.categories_))

    def corruptions(self) -> dict[str, Corruption]:
        imputed = [(m - mu) / s for m, mu, s in zip(self.medians_, self.means_, self.stds_)]
        tab = TabularCorruptions(2 * len(self.medians_), imputed)
        return {"noise": tab.noise, "missing": tab.missing}
