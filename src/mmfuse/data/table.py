"""Read a table (CSV / TSV / Parquet / JSONL / DataFrame), remember its folder for relative file paths, and split it.

Delimited files are checked before pandas reads them, because pandas would quietly rename a repeated column name
(``num`` -> ``num.1``), pad short rows with empty cells, or turn an extra first field into an index: repeated names
and rows whose field count differs from the header are refused with the line number. Text is UTF-8 (a BOM is
dropped) unless an encoding is named. Limit (documented): ``MAX_COLUMNS`` columns per table.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import DataError
from .surrogates import replace_escapes, replace_in_frame

SEPARATORS = {".csv": ",", ".tsv": "\t"}
MAX_COLUMNS = 10_000  # columns of one table (each is detected, planned and reported on its own)


def _read_delimited(path: Path, encoding: str) -> pd.DataFrame:
    return pd.read_csv(path, sep=SEPARATORS[path.suffix.lower()], encoding=encoding)


def _read_parquet(path: Path, encoding: str) -> pd.DataFrame:
    """A Parquet table read one row group at a time, each turned into pandas before the next is read: the peak holds
    one group in Arrow form beside the frame, not the whole table twice (Arrow and pandas)."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    if file.num_row_groups == 0:
        return file.schema_arrow.empty_table().to_pandas()
    return pd.concat([file.read_row_group(i).to_pandas() for i in range(file.num_row_groups)], ignore_index=True)


def _read_json_lines(path: Path, encoding: str) -> pd.DataFrame:
    """One JSON object per line; lone surrogate escapes read as U+FFFD (``data.surrogates``), not dropped."""
    text = replace_escapes(path.read_text(encoding=encoding), path.name)
    return pd.read_json(io.StringIO(text), lines=True)


READERS: dict[str, Callable[[Path, str], pd.DataFrame]] = {
    ".csv": _read_delimited, ".tsv": _read_delimited, ".parquet": _read_parquet,
    ".jsonl": _read_json_lines, ".json": _read_json_lines}


@dataclass
class Table:
    """A DataFrame (rows numbered 0..n-1) plus the folder its relative file paths are resolved against, and the
    caller's own row labels when it came from a DataFrame (outputs are indexed by them)."""

    frame: pd.DataFrame
    root: Path
    name: str = "table"
    index: pd.Index | None = None  # (n,) the caller's row labels; None: 0..n-1

    def __len__(self) -> int:
        return len(self.frame)

    def labels(self, rows: np.ndarray) -> pd.Index:
        """The caller's labels of the rows at positions ``rows`` (N,)."""
        return pd.RangeIndex(len(self.frame))[rows] if self.index is None else self.index[rows]


@dataclass(frozen=True)
class TableFile:
    """A table file to read with a named text encoding (e.g. ``latin-1``); a plain path reads UTF-8."""

    path: str | Path
    encoding: str = "utf-8-sig"


def read_table(data: Any, name: str = "table") -> Table:
    """Load a table; file paths inside it are later resolved against the table file's folder (or the cwd)."""
    if isinstance(data, Table):
        return data
    if isinstance(data, pd.DataFrame):
        _check_names(list(data.columns), name, "the DataFrame")
        return Table(replace_in_frame(data.reset_index(drop=True), name), Path.cwd(), name, data.index)
    source = data if isinstance(data, TableFile) else TableFile(data)
    path = Path(source.path)
    if not path.is_file():
        raise DataError(f"{name}: file not found: {path}")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{name}: cannot read {path.name}: use .csv, .tsv, .parquet or .jsonl")
    try:
        if path.suffix.lower() in SEPARATORS:
            check_delimited(path, source.encoding, name)
        frame = reader(path, source.encoding)
    except UnicodeDecodeError as err:
        raise DataError(f"{name}: {path} is not {source.encoding} text (byte {err.start}: "
                        f"0x{err.object[err.start]:02x}); name its encoding with --encoding, e.g. --encoding latin-1"
                        ) from None
    except LookupError:
        raise DataError(f"{name}: unknown text encoding {source.encoding!r}") from None
    except DataError:
        raise
    except Exception as err:  # pandas/pyarrow raise many types; the user needs the file name and the reason
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{name}: cannot read {path}: {reason}") from None
    _check_names(list(frame.columns), name, str(path))
    if frame.empty:
        raise DataError(f"{name}: {path} has no rows")
    return Table(frame.reset_index(drop=True), path.resolve().parent, path.name)


def check_delimited(path: Path, encoding: str, name: str) -> None:
    """Refuse a CSV / TSV with no header, a repeated column name, or a row whose field count differs from the
    header's (blank lines are skipped, as pandas does)."""
    limit = csv.field_size_limit(2**31 - 1)  # pandas reads cells of any size; so must the check
    with open(path, newline="", encoding=encoding) as f:
        reader = csv.reader(f, delimiter=SEPARATORS[path.suffix.lower()])
        try:
            header = next(reader, None)
            if not header:
                raise DataError(f"{name}: {path} is empty (no header line)")
            _check_names(header, name, str(path))
            for record in reader:
                if record and len(record) != len(header):
                    raise DataError(f"{name}: {path} line {reader.line_num}: {len(record)} fields where the header "
                                    f"has {len(header)} (a stray separator or quote?)")
        except csv.Error as err:
            raise DataError(f"{name}: {path} line {reader.line_num}: {err}") from None
        finally:
            csv.field_size_limit(limit)


def _check_names(columns: list[Any], name: str, where: str) -> None:
    if len(columns) > MAX_COLUMNS:
        raise DataError(f"{name}: {where} has {len(columns):,} columns, above the limit of {MAX_COLUMNS:,}: select "
                        "the columns to learn from first")
    repeated = sorted(str(c) for c, n in Counter(columns).items() if n > 1)
    if repeated:
        raise DataError(f"{name}: {where} has repeated column names: {', '.join(repeated)}; rename them")


def split_rows(strata: np.ndarray | None, n_rows: int, valid_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a train/validation split, stratified by ``strata`` when given (classes with one row stay in train).

    Returns:
        (train_idx, valid_idx), both sorted.
    """
    rng = np.random.default_rng(seed)
    groups = [np.arange(n_rows)] if strata is None else [np.flatnonzero(strata == s) for s in pd.unique(strata)]
    valid: list[np.ndarray] = []
    for rows in groups:
        rows = rng.permutation(rows)
        n_valid = int(round(len(rows) * valid_fraction)) if len(rows) > 1 else 0
        valid.append(rows[:n_valid])
    valid_idx = np.sort(np.concatenate(valid)) if valid else np.array([], dtype=int)
    if len(valid_idx) == 0:
        raise DataError(f"cannot hold out a validation split from {n_rows} rows; pass --valid with a validation table")
    train_idx = np.setdiff1d(np.arange(n_rows), valid_idx)
    return train_idx, valid_idx
