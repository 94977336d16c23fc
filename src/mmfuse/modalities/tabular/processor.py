"""Numeric, date/time and categorical columns -> one float input (N, 2 * n_numbers + n_categorical).

Numeric: median-imputed, standardised value + a 0/1 missing indicator per column; a value that is not a finite
number (text, inf) is unreadable and imputed the same way, and a standardised value beyond +-CLIP is clipped and
reported. Date/time: five numbers per column (``DATE_PARTS``: year, month, weekday, hour, days since 1970-01-01,
in UTC; a time without a zone is read as UTC), each handled as a numeric column; a value that is not a date/time is
unreadable, as a non-number is. Categorical: ids stored as floats, 0 = missing, 1 = unseen category, 2.. =
categories seen in training.
"""

from __future__ import annotations

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
from .dates import DATE_PARTS, ambiguous_dates, date_order, date_parts

CLIP = 1e4  # standard deviations from the training mean
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
        return pd.concat([frame[self.numeric], *(date_parts(frame[col], order)
                                                 for col, order in zip(self.datetime, self._orders()))], axis=1)

    def _orders(self) -> list[str | None]:
        """Each date/time column's d/d/yyyy order, learned on the training rows (None: a model saved before)."""
        return getattr(self, "date_orders_", [None] * len(self.datetime))

    def fit(self, frame: pd.DataFrame, root: Path, progress: Progress | None = None) -> "TabularProcessor":
        self.date_orders_ = [date_order(frame[col]) for col in self.datetime]
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
        ambiguous = {col: ambiguous_dates(frame[col], order) for col, order in zip(self.datetime, self._orders())
                     if order is not None}
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
                if col in ambiguous and ambiguous[col].iloc[i]:
                    detail = (f"ambiguous date {raw.iloc[i]!r}: the column has day-first and month-first dates, and "
                              "this one reads as both")
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

    def known_categories(self) -> dict[str, list[str]]:
        return dict(zip(self.categorical, self.categories_))

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
