"""Turn a table split into stored tensors once, apply the bad-row policy, and serve prepared batches.

Rows are numbered as in the user's table (0-based data rows) in every message and in ``data_report.json``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from ..errors import DataError
from .preprocess import EMPTY, UNREADABLE, Processor, input_values


@dataclass
class Batch:
    inputs: dict[str, Tensor]   # name -> (B, ...) model-ready tensors
    present: dict[str, Tensor]  # name -> (B,) bool
    target: Tensor | None       # (B, ...) or None at predict time


@dataclass
class EncodedSplit:
    """A split after preprocessing: stored tensors for the rows kept, their table row ids, and the report."""

    stored: dict[str, Tensor]
    present: dict[str, Tensor]
    rows: np.ndarray            # (N,) row ids in the user's table
    report: dict[str, Any]


def encode_split(frame: pd.DataFrame, root: Path, processors: dict[str, Processor], on_bad_row: str,
                 split: str) -> EncodedSplit:
    """Transform every input of ``frame`` and apply ``on_bad_row`` (error | skip | mask) to unreadable values."""
    stored, present, problems = {}, {}, []
    for name, proc in processors.items():
        out = proc.transform(input_values(frame, name, proc), root)
        stored[name], present[name] = out.values, out.present
        problems += out.problems
    row_ids = frame.index.to_numpy()
    unreadable = [p for p in problems if p.kind == UNREADABLE]
    _fail_if_column_unreadable(unreadable, problems, len(frame), root, split)
    if unreadable and on_bad_row == "error":
        p = unreadable[0]
        more = f" ({len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
        raise DataError(f"{split} row {row_ids[p.row]}, column {p.column!r}: {p.detail}{more}; "
                        "use --on-bad-row skip or mask to continue without it")
    skip = sorted({p.row for p in unreadable}) if on_bad_row == "skip" else []
    keep = np.setdiff1d(np.arange(len(frame)), skip)
    report: dict[str, Any] = {"rows": len(frame), "used": len(keep), "on_bad_row": on_bad_row,
                              "skipped": [{"row": int(row_ids[p.row]), "column": p.column, "reason": p.detail}
                                          for p in unreadable if on_bad_row == "skip"],
                              "columns": defaultdict(lambda: defaultdict(lambda: {"count": 0, "rows": []}))}
    for p in problems:
        if p.row in skip:
            continue
        kind = "masked" if p.kind == UNREADABLE else p.kind
        entry = report["columns"][p.column][kind]
        entry["count"] += 1
        entry["rows"].append(int(row_ids[p.row]))
    report["columns"] = {c: dict(kinds) for c, kinds in report["columns"].items()}
    index = torch.as_tensor(keep, dtype=torch.long)
    return EncodedSplit({n: t[index] for n, t in stored.items()}, {n: m[index] for n, m in present.items()},
                        row_ids[keep], report)


def _fail_if_column_unreadable(unreadable: list, problems: list, n_rows: int, root: Path, split: str) -> None:
    """A column none of whose non-empty values can be read is a path or type mistake, not bad rows: stop."""
    by_column: dict[str, list] = defaultdict(list)
    for p in unreadable:
        by_column[p.column].append(p)
    for column, bad in by_column.items():
        empty = sum(1 for p in problems if p.column == column and p.kind == EMPTY)
        if len(bad) >= 3 and len(bad) + empty == n_rows:
            raise DataError(f"{split}: column {column!r}: not one of {len(bad)} values could be read "
                            f"(first: {bad[0].detail}); relative paths are resolved against the table's folder, "
                            f"here {root} (for a DataFrame: the working directory)")


def describe_report(report: dict[str, Any], split: str) -> list[str]:
    """Human-readable lines for a split report (nothing when every value was usable)."""
    lines = []
    if report.get("label_missing"):
        lines.append(f"{split}: {len(report['label_missing'])} rows have no label and were not used "
                     f"(rows {_preview(report['label_missing'])})")
    if report["skipped"]:
        rows = sorted({s["row"] for s in report["skipped"]})
        lines.append(f"{split}: skipped {len(rows)} rows with unreadable values (rows {_preview(rows)})")
    for column, kinds in report["columns"].items():
        for kind, entry in kinds.items():
            what = {"empty": "empty/missing (masked or imputed)", "masked": "unreadable (masked)",
                    "unknown_category": "unseen categories (unknown bucket)"}.get(kind, kind)
            lines.append(f"{split}: column {column!r}: {entry['count']} {what} (rows {_preview(entry['rows'])})")
    return lines


def _preview(rows: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f", ... +{len(rows) - limit}" if len(rows) > limit else "")


class TableDataset(Dataset):
    """Stored tensors of one split; ``dataset[list_of_positions]`` returns a whole prepared ``Batch``."""

    def __init__(self, split: EncodedSplit, processors: dict[str, Processor], target: Tensor | None = None,
                 train: bool = False):
        self.split, self.processors, self.target, self.train = split, processors, target, train

    def __len__(self) -> int:
        return len(self.split.rows)

    def __getitem__(self, positions: list[int]) -> Batch:
        index = torch.as_tensor(positions, dtype=torch.long)
        inputs = {n: p.prepare_batch(self.split.stored[n][index], self.train) for n, p in self.processors.items()}
        present = {n: m[index] for n, m in self.split.present.items()}
        return Batch(inputs, present, None if self.target is None else self.target[index])


def _whole_batch(batch: Batch) -> Batch:
    return batch


def make_loader(dataset: TableDataset, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """Batches of whole index lists (no per-row collation), shuffled with a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    order = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return DataLoader(dataset, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None,
                      collate_fn=_whole_batch)
