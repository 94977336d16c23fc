"""Read a table (CSV / Parquet / JSONL / DataFrame), remember its folder for relative file paths, and split it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

READERS = {".csv": pd.read_csv, ".tsv": lambda p: pd.read_csv(p, sep="\t"), ".parquet": pd.read_parquet,
           ".jsonl": lambda p: pd.read_json(p, lines=True), ".json": lambda p: pd.read_json(p, lines=True)}


@dataclass
class Table:
    """A DataFrame plus the folder its relative file paths are resolved against."""

    frame: pd.DataFrame
    root: Path
    name: str = "table"

    def __len__(self) -> int:
        return len(self.frame)


def read_table(data: "str | Path | pd.DataFrame | Table", name: str = "table") -> Table:
    """Load a table; file paths inside it are later resolved against the table file's folder (or the cwd)."""
    if isinstance(data, Table):
        return data
    if isinstance(data, pd.DataFrame):
        return Table(data.reset_index(drop=True), Path.cwd(), name)
    path = Path(data)
    if not path.is_file():
        raise DataError(f"{name}: file not found: {path}")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{name}: cannot read {path.name}: use .csv, .tsv, .parquet or .jsonl")
    try:
        frame = reader(path)
    except Exception as err:  # pandas/pyarrow raise many types; the user needs the file name and the reason
        raise DataError(f"{name}: cannot read {path}: {err}") from None
    if frame.empty:
        raise DataError(f"{name}: {path} has no rows")
    return Table(frame.reset_index(drop=True), path.resolve().parent, path.name)


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
