"""A split as stored tensors (``EncodedSplit``), its data report in words, and prepared batches for training.

Rows are numbered as in the user's table (0-based data rows) in every message and in ``data_report.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from ..core.processor import Processor
from .streaming import take_rows


@dataclass
class Batch:
    inputs: dict[str, Tensor]   # name -> (B, ...) model-ready tensors
    present: dict[str, Tensor]  # name -> (B,) bool
    target: Tensor | None       # (B, ...) or None at predict time
    weight: Tensor | None = None  # (B,) the rows' weights in the loss and the scores (None: 1 each)

    def pin_memory(self) -> "Batch":
        """The batch in page-locked memory (a DataLoader with ``pin_memory`` calls this), for faster copies to a GPU."""
        return Batch({n: t.pin_memory() for n, t in self.inputs.items()},
                     {n: m.pin_memory() for n, m in self.present.items()},
                     None if self.target is None else self.target.pin_memory(),
                     None if self.weight is None else self.weight.pin_memory())


class SkippedRow(TypedDict):
    row: int      # in the user's table
    column: str
    reason: str


class ColumnProblems(TypedDict, total=False):
    count: int    # rows with such a value
    rows: list[int]
    first: str    # the first value's detail
    values: int   # such values (a set cell may hold several)


class SplitReport(TypedDict, total=False):
    """What preprocessing did to a split (saved as ``data_report.json``, hence a JSON mapping with a known shape).

    ``rows`` read and ``used``; the ``on_bad_row`` policy; ``skipped`` rows (skip: one entry per unreadable value);
    ``columns``: column -> kind (empty, masked, unknown_category, truncated, ...) -> count, rows, first detail; and,
    where they apply, ``label_missing`` (rows without a label), ``pairs_left_out`` (retrieval rows lacking a side)
    and ``streamed`` (input -> how its rows were kept: sample cache hit / filled / off, MB, seconds).
    """

    rows: int
    used: int
    on_bad_row: str
    skipped: list[SkippedRow]
    columns: dict[str, dict[str, ColumnProblems]]
    label_missing: list[int]
    pairs_left_out: list[int]
    streamed: dict[str, dict[str, Any]]


@dataclass
class EncodedSplit:
    """A split after preprocessing: stored rows for the rows kept (tensors, or for streamed inputs rows kept on disk
    or decoded on read: ``stored[name][index]`` gives a tensor either way), their table row ids, and the report."""

    stored: dict[str, Any]
    present: dict[str, Tensor]
    rows: np.ndarray            # (N,) row ids in the user's table
    report: SplitReport

    def take(self, index: Tensor) -> "EncodedSplit":
        """The rows at positions ``index`` (N',) long; the report is shared."""
        return EncodedSplit({n: take_rows(t, index) for n, t in self.stored.items()},
                            {n: m[index] for n, m in self.present.items()}, self.rows[index.numpy()], self.report)


def joined(first: EncodedSplit, second: EncodedSplit, ragged: set[str]) -> EncodedSplit | str:
    """Two splits' rows as one (a refit's training rows): ``second``'s after ``first``'s, the report ``first``'s;
    the inputs in ``ragged`` (ids trimmed to the batch) zero-padded to the wider split. A one-line reason instead
    when another input's stored rows differ in shape between the two."""
    for name, rows in first.stored.items():
        shapes = [tuple(s[torch.zeros(1, dtype=torch.long)].shape[1:]) for s in (rows, second.stored[name])]
        if shapes[0] != shapes[1] and name not in ragged:
            return f"input {name!r} is stored {shapes[0]} a row in one split and {shapes[1]} in the other"
    return EncodedSplit({n: JoinedRows(first.stored[n], second.stored[n]) for n in first.stored},
                        {n: torch.cat([first.present[n], second.present[n]]) for n in first.present},
                        np.concatenate([first.rows, second.rows]), first.report)


class JoinedRows:
    """Two stored inputs read as one: positions past the first's rows read the second's; rows zero-padded to the
    wider of the two in their last dimension."""

    def __init__(self, first: Any, second: Any):
        self.first, self.second, self.split = first, second, len(first)

    def __len__(self) -> int:
        return self.split + len(self.second)

    def __getitem__(self, positions: Tensor | np.ndarray | list[int]) -> Tensor:
        index = torch.as_tensor(positions, dtype=torch.long)
        low = index < self.split
        parts = {k: rows[at] for k, rows, at in ((True, self.first, index[low]), (False, self.second,
                                                                                 index[~low] - self.split)) if len(at)}
        width = max(p.shape[-1] for p in parts.values())
        first = next(iter(parts.values()))
        out = first.new_zeros((len(index), *first.shape[1:-1], width))
        for k, part in parts.items():
            out[low if k else ~low] = torch.nn.functional.pad(part, (0, width - part.shape[-1]))
        return out

    def take(self, positions: Tensor) -> Tensor:
        return self[positions]


def describe_report(report: SplitReport, split: str) -> list[str]:
    """Human-readable lines for a split report (nothing when every value was usable)."""
    lines = []
    if report.get("label_missing"):
        lines.append(f"{split}: {len(report['label_missing'])} rows have no label and were not used "
                     f"(rows {_preview(report['label_missing'])})")
    if report["skipped"]:
        rows = sorted({s["row"] for s in report["skipped"]})
        first = report["skipped"][0]
        lines.append(f"{split}: skipped {len(rows)} rows with unreadable values (rows {_preview(rows)}; first: row "
                     f"{first['row']}, column {first['column']!r}: {first['reason']})")
    for column, kinds in report["columns"].items():
        for kind, entry in kinds.items():
            what = {"empty": "empty/missing (masked or imputed)", "masked": "unreadable (masked)",
                    "unknown_category": "unseen categories (unknown bucket)"}.get(kind, kind)
            first = f"; first: {entry['first']}" if kind != "empty" and entry.get("first") else ""
            values = f", {entry['values']} values in all" if entry.get("values", entry["count"]) > entry["count"] else ""
            lines.append(f"{split}: column {column!r}: {entry['count']} {what} (rows {_preview(entry['rows'])}{values}"
                         f"{first})")
    return lines


def row_accounting(split: "EncodedSplit") -> dict[str, int]:
    """How many rows of the table a split scores and why the others were left out (rows = the sum of the rest)."""
    left_out = {"left_out_no_label": len(split.report.get("label_missing", [])),
                "left_out_unreadable": len({s["row"] for s in split.report["skipped"]})}
    if "pairs_left_out" in split.report:  # retrieval: a pair needs both sides
        left_out["left_out_incomplete_pair"] = len(split.report["pairs_left_out"])
    return {"rows": len(split.rows) + sum(left_out.values()), "rows_scored": len(split.rows), **left_out}


def _preview(rows: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f", ... +{len(rows) - limit}" if len(rows) > limit else "")


class TableDataset(Dataset):
    """Stored rows of one split; ``dataset[list_of_positions]`` returns a whole prepared ``Batch``. ``workers``:
    how many DataLoader workers its loaders use (``make_loader``)."""

    def __init__(self, split: EncodedSplit, processors: dict[str, Processor], target: Tensor | None = None,
                 train: bool = False, workers: int = 0, weight: Tensor | None = None):
        self.split, self.processors, self.target, self.train, self.workers = split, processors, target, train, workers
        self.weight = weight  # (N,) float: each row's weight in the loss and the scores (None: 1)

    def __len__(self) -> int:
        return len(self.split.rows)

    def weights(self) -> np.ndarray | None:
        """``weight`` as numpy float64 (None: 1 each), as scores take it."""
        return None if self.weight is None else self.weight.double().numpy()

    def __getitem__(self, positions: list[int]) -> Batch:
        index = torch.as_tensor(positions, dtype=torch.long)
        inputs = {n: p.prepare_batch(self.split.stored[n][index], self.train) for n, p in self.processors.items()}
        present = {n: m[index] for n, m in self.split.present.items()}
        return Batch(inputs, present, None if self.target is None else self.target[index],
                     None if self.weight is None else self.weight[index])


def _whole_batch(batch: Batch) -> Batch:
    return batch


class ShardedBatches:
    """Each global batch of ``batches`` split between ``world`` processes: process ``rank`` gets rows rank, rank +
    world, ...; every process draws the same global order (same seed), so together they take the same steps as one
    process with the global batch. A last batch smaller than ``world`` is dropped (every rank needs a row)."""

    def __init__(self, batches: BatchSampler, rank: int, world: int):
        self.batches, self.rank, self.world = batches, rank, world
        self.sampler = batches.sampler  # the shuffling state lives here (saved by checkpoints)

    def __iter__(self):
        for batch in self.batches:
            if len(batch) >= self.world:
                yield batch[self.rank::self.world]

    def __len__(self) -> int:
        full, last = divmod(len(self.batches.sampler), self.batches.batch_size)
        return full + (1 if last >= self.world else 0)


def make_loader(dataset: TableDataset, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0,
                world: int = 1, pin_memory: bool = False) -> DataLoader:
    """Batches of whole index lists (no per-row collation), shuffled with a seeded generator; with ``world`` > 1,
    this process's share of each global batch (``ShardedBatches``). The dataset's ``workers`` processes prepare
    batches (read streamed rows, augment) ahead of the model, kept for the loader's life; ``pin_memory`` for copies
    to a GPU."""
    generator = torch.Generator().manual_seed(seed)
    order = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    batches = BatchSampler(order, batch_size, drop_last=False)
    return DataLoader(dataset, sampler=ShardedBatches(batches, rank, world) if world > 1 else batches,
                      batch_size=None, collate_fn=_whole_batch, num_workers=dataset.workers,
                      persistent_workers=dataset.workers > 0, pin_memory=pin_memory)


def loader_generator(loader: DataLoader) -> torch.Generator:
    """The generator a ``make_loader`` loader shuffles with (its state is part of a training checkpoint)."""
    return loader.sampler.sampler.generator
