"""Date/time cells read only where they say one date unambiguously.

    order = date_order(train["when"])          # "month", "day" or "mixed": how its d/d/yyyy dates read
    when = parse_datetimes(cells, order)       # UTC timestamps, NaT where a cell is not one date
    parts = date_parts(cells, order)           # year, month, weekday, hour, days since 1970 per cell

Read: ISO 8601 dates and times (2024-03-01, 2024-03-01T14:30:00Z), d/d/yyyy dates with an optional time, and
written-out dates with a four-digit year and a day (1 March 2024, Mar 1 2024 10:00). Not read (unreadable, and
reported as such): words alone ("March", "now", "today"), bare numbers ("-1", "2020", "20240301"). A d/d/yyyy
date reads month-first (as pandas does) unless the column's dates force day-first (a first field above 12); in a
column where some force each order, a date both orders read differently (01/02/2020) is ambiguous: unreadable and
reported, never guessed. The order is learned on the training rows and kept with the model.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

DATE_PARTS = ("year", "month", "weekday", "hour", "days")
ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2}|UTC)?)?$")
SLASH = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2}|UTC)?)?$")
WRITTEN = re.compile(r"^(?=.*[A-Za-z])(?=.*\b\d{4}\b)(?=.*\b\d{1,2}\b)[\w ,.:+-]+$")  # a word, a year and a day


def _strings(values: pd.Series) -> pd.Series:
    return values.where(values.notna(), None).astype(object).map(lambda v: v if v is None else str(v).strip())


def _slash_fields(strings: pd.Series) -> pd.DataFrame:
    """The two leading fields of each d/d/yyyy cell (NaN elsewhere)."""
    return strings.astype(str).str.extract(SLASH)[[0, 1]].astype(float).where(strings.notna())


def date_order(values: pd.Series) -> str:
    """How the column's d/d/yyyy dates read: "day" where some force day-first and none month-first, "mixed" where
    some force each, else "month"."""
    fields = _slash_fields(_strings(values))
    day, month = bool((fields[0] > 12).any()), bool((fields[1] > 12).any())
    return "mixed" if day and month else "day" if day else "month"


def ambiguous_dates(values: pd.Series, order: str) -> pd.Series:
    """Cells that two orders read as different dates, in a column whose order is "mixed"."""
    if order != "mixed":
        return pd.Series(False, index=values.index)
    fields = _slash_fields(_strings(values))
    return ((fields[0] <= 12) & (fields[1] <= 12) & (fields[0] != fields[1])).fillna(False).astype(bool)


def parse_datetimes(values: pd.Series, order: str | None = None) -> pd.Series:
    """Cells -> UTC timestamps, NaT where a cell is empty, not a date/time, or ambiguous (``order``: the column's,
    from ``date_order``; inferred from these cells when None)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
    strings = _strings(values)
    order = order or date_order(strings)
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    text = strings.astype(str)
    fields = _slash_fields(strings)
    iso, slash = text.str.match(ISO) & strings.notna(), fields[0].notna()
    written = text.str.match(WRITTEN) & strings.notna() & ~iso & ~slash
    day_first = (fields[0] > 12) if order == "mixed" else pd.Series(order == "day", index=values.index)
    slash &= ~ambiguous_dates(strings, order)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format" for mixed columns
        for mask, how in ((iso, {"format": "ISO8601"}), (slash & day_first, {"format": "mixed", "dayfirst": True}),
                          (slash & ~day_first, {"format": "mixed", "dayfirst": False}),
                          (written, {"format": "mixed"})):
            if mask.any():
                parsed[mask] = pd.to_datetime(text[mask], errors="coerce", utc=True, **how)
    return parsed


def date_parts(values: pd.Series, order: str | None = None) -> pd.DataFrame:
    """A date/time column -> its ``DATE_PARTS`` as float columns named ``<column>:<part>`` (NaN where unreadable)."""
    when = parse_datetimes(values, order)
    days = (when - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(days=1)
    parts = {"year": when.dt.year, "month": when.dt.month, "weekday": when.dt.day_of_week, "hour": when.dt.hour,
             "days": days}
    return pd.DataFrame({f"{values.name}:{p}": parts[p].astype(float) for p in DATE_PARTS}, index=values.index)


def readable_share(values: pd.Series) -> float:
    """Share of the cells that are dates (an ambiguous one counts: it is a date, only its order is not known)."""
    strings = _strings(values)
    order = date_order(strings)
    readable = parse_datetimes(strings, order).notna() | ambiguous_dates(strings, order)
    return float(np.mean(readable)) if len(strings) else 0.0
