"""The rows a fit learns from and validates on, before preprocessing (the validation table given, or a seeded
hold-out of the training table, stratified by class where the task has one class per row), and the rows a
prediction reads (a column the model needs and the table lacks is missing in every row, said in the log)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.table import read_table, split_rows
from ..errors import DataError
from .timing import Stopwatch


@dataclass
class FitSplits:
    """The labelled rows a fit learns from and validates on, before preprocessing."""

    train: pd.DataFrame
    valid: pd.DataFrame
    train_root: Path              # where the tables' relative file paths resolve
    valid_root: Path
    train_left_out: list[int]     # rows without a label
    valid_left_out: list[int]
    columns: list[str]            # the training table's columns, as read


def read_splits(estimator: Any, train: Any, y: Any, valid: Any, clock: Stopwatch) -> FitSplits:
    """An estimator's training and validation rows (a seeded hold-out of ``train`` when ``valid`` is None); sets its
    task from the training labels."""
    with clock("read"):
        table = estimator._with_labels(read_table(train, "train"), y)
    frame, left_out = estimator._usable_rows(table.frame, "train")
    estimator.task_ = estimator._make_task(frame)
    if valid is not None:
        with clock("read"):
            valid_table = read_table(valid, "valid")
        valid_frame, valid_left_out = estimator._usable_rows(valid_table.frame, "valid")
        return FitSplits(frame, valid_frame, table.root, valid_table.root, left_out, valid_left_out,
                         list(table.frame.columns))
    seed, fraction = estimator.config_.train.seed, estimator.config_.train.valid_fraction
    train_idx, valid_idx = split_rows(estimator._strata(frame), len(frame), fraction, seed)
    estimator._log(f"validation: {len(valid_idx)} rows held out from train (seed {seed})")
    return FitSplits(frame.iloc[train_idx], frame.iloc[valid_idx], table.root, table.root, left_out, [],
                     list(table.frame.columns))


def prediction_rows(estimator: Any, data: Any, split: str, labelled: bool) -> tuple[pd.DataFrame, Path, list[int]]:
    """A table's rows as a fitted estimator predicts them: (the rows, their folder, the ids of rows without a label,
    with ``labelled``)."""
    table = read_table(data, split)
    if table.frame.empty:
        raise DataError(f"{split}: the table has no rows")
    frame, missing = estimator._usable_rows(table.frame, split) if labelled else (table.frame, [])
    needed = [c.name for c in estimator.columns_ if c.modality != "ignore"]
    absent = [c for c in needed if c not in frame.columns]
    if len(absent) == len(needed):
        raise DataError(f"{split}: none of the model's input columns ({', '.join(map(repr, needed))}) is in the table")
    if absent:
        estimator._log(f"{split}: column(s) {', '.join(map(repr, absent))} not in the table: predicting without them "
                       "(as missing in every row)", logging.WARNING)
        frame = frame.assign(**{c: np.nan for c in absent})
    return frame, table.root, missing
