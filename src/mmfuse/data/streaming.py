"""The streamed input pipeline: large inputs (images, audio, sequences, frozen image features) transformed in chunks of
rows, by DataLoader workers, with their stored rows kept on disk (the sample cache, ``io/samples.py``) or decoded
again for every batch (no cache), so a process's memory does not grow with the table.

``Streaming.mode``: ``off`` keeps every input in memory (the fastest for tables that fit); ``on`` streams every
streamable input; ``auto`` (the default) streams an input whose stored rows would take more than ``above_mb``
(measured on the first rows). The chunked pass finds unreadable values as the in-memory transform does, so
``--on-bad-row`` and the data report work the same; text and tabular inputs always stay in memory (they are small).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..core.processor import Problem, Processor, Progress, Transformed
from ..core.set_processor import rows_holding
from ..errors import ConfigError
from ..io.samples import SampleCache, entry_key, sample_cache_dir

log = logging.getLogger("mmfuse")

CHUNK_ROWS = 256
PROBE_ROWS = 16
MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class Streaming:
    """How the input pipeline holds large inputs. ``workers``: DataLoader worker processes that decode chunks and
    prepare batches (0: in the training process); ``cache``: keep streamed rows on disk under
    ``<cache_dir>/samples`` (else decode them again every epoch); ``above_mb``: the ``auto`` threshold per input."""

    mode: str = "auto"
    workers: int = 0
    cache: bool = True
    cache_dir: str | None = None
    above_mb: float = 1024.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"stream must be auto, on or off, not {self.mode!r}")
        if self.workers < 0:
            raise ConfigError(f"workers must be 0 or more, not {self.workers}")


class DecodedRows:
    """An input's rows decoded from the table at each read (the streamed path without a cache):
    ``rows[index]`` -> the processor's stored rows (len(index), ...)."""

    def __init__(self, processor: Processor, values: pd.Series, root: Path, index: np.ndarray | None = None):
        self.processor, self.values, self.root = processor, values, root
        self.index = np.arange(len(values)) if index is None else index

    def __len__(self) -> int:
        return len(self.index)

    def take(self, positions: Tensor | np.ndarray) -> "DecodedRows":
        return DecodedRows(self.processor, self.values, self.root, self.index[np.asarray(positions)])

    def __getitem__(self, positions: Tensor | np.ndarray | list[int]) -> Tensor:
        rows = self.index[np.asarray(positions, dtype=np.int64)]
        return self.processor.transform(self.values.iloc[rows], self.root).values


def take_rows(stored: Any, positions: Tensor) -> Any:
    """Rows ``positions`` of a stored input: a tensor's rows, or a view of rows kept on disk or decoded on read."""
    return stored[positions] if isinstance(stored, Tensor) else stored.take(positions)


def chunk_rows(processor: Processor) -> int:
    """Rows a chunk holds: ``CHUNK_ROWS`` values, so fewer rows for a set input (4 images a row: 64 rows)."""
    return rows_holding(processor, CHUNK_ROWS)


class _Chunks(Dataset):
    """Chunk k of a column's values, transformed: (k, Transformed) with row numbers within the chunk."""

    def __init__(self, processor: Processor, values: pd.Series, root: Path):
        self.processor, self.values, self.root = processor, values, root
        self.rows = chunk_rows(processor)

    def __len__(self) -> int:
        return math.ceil(len(self.values) / self.rows)

    def __getitem__(self, k: int) -> tuple[int, Transformed]:
        return k, self.processor.transform(self.values.iloc[k * self.rows:(k + 1) * self.rows], self.root)


def _as_is(item: Any) -> Any:
    return item


def stored_bytes_per_row(processor: Processor, values: pd.Series, root: Path) -> int:
    """Bytes one row of this input takes stored, from its first rows' transform."""
    probe = processor.transform(values.iloc[:PROBE_ROWS], root).values
    return probe[0].numel() * probe.element_size() if len(probe) else 0


def should_stream(processor: Processor, values: pd.Series, root: Path, streaming: Streaming) -> bool:
    """Whether this input's rows go to disk: a streamable input under ``on``, or under ``auto`` one whose stored
    rows would pass ``above_mb`` (tables of at most one chunk never)."""
    if not processor.streamable or streaming.mode == "off" or len(values) == 0:
        return False
    if streaming.mode == "on":
        return True
    if len(values) <= CHUNK_ROWS:  # a request or a small table: memory is not the question
        return False
    return len(values) * stored_bytes_per_row(processor, values, root) > streaming.above_mb * 2**20


def stream_transform(processor: Processor, values: pd.Series, root: Path, streaming: Streaming,
                     progress: Progress | None = None) -> tuple[Transformed, dict[str, Any]]:
    """An input transformed in chunks: (values kept on disk or decoded on read, present, problems) and what was
    done (``cache``: hit / filled / off, ``stored_mb``, ``seconds``)."""
    start = time.perf_counter()
    if not streaming.cache:
        present, problems = _chunked_pass(processor, values, root, streaming.workers, progress, None)
        out = Transformed(DecodedRows(processor, values, root), present, problems)
        return out, {"cache": "off", "seconds": round(time.perf_counter() - start, 2)}
    cache = SampleCache(sample_cache_dir(streaming.cache_dir))
    key = entry_key(processor.state_dict(), root, values.tolist())
    with cache.lock(key):  # a process filling the same entry (another DDP rank) finishes first; this one finds it
        found, status = cache.find(key), "hit"
        if found is None:
            status = "filled" if cache.failed is None else f"filled again (the entry {cache.failed})"
            try:
                with cache.fill(key, len(values)) as writer:
                    present, problems = _chunked_pass(processor, values, root, streaming.workers, progress,
                                                      lambda chunk: writer.write(chunk.numpy()))
                    writer.finish(present, [asdict(p) for p in problems])
            except OSError as err:  # the cache folder cannot be written: decode on read instead
                log.warning(f"sample cache {cache.folder} cannot be written ({err.strerror or err}): "
                            f"{processor.column!r} is decoded as it is read instead")
                return stream_transform(processor, values, root, replace(streaming, cache=False), progress)
            found = cache.find(key)
    rows, present, problems = found
    return Transformed(rows, present, [Problem(**p) for p in problems]), {
        "cache": status, "stored_mb": round(rows.nbytes() / 2**20, 1), "seconds": round(time.perf_counter() - start, 2),
        "folder": str(cache.folder / key)}


def _chunked_pass(processor: Processor, values: pd.Series, root: Path, workers: int, progress: Progress | None,
                  write: Callable[[Tensor], None] | None) -> tuple[Tensor, list[Problem]]:
    """Transform every chunk (in row order, by ``workers`` processes), hand its stored rows to ``write``, and
    gather the presence mask and problems (row numbers of the whole column)."""
    present = torch.ones(len(values), dtype=torch.bool)
    problems: list[Problem] = []
    loader = DataLoader(_Chunks(processor, values, root), batch_size=None, num_workers=workers, collate_fn=_as_is)
    what, rows = f"reading {processor.modality} of {processor.column!r}", chunk_rows(processor)
    for k, out in loader:
        first = k * rows
        present[first:first + len(out.present)] = out.present
        problems += [Problem(first + p.row, p.column, p.kind, p.detail) for p in out.problems]
        if write is not None:
            write(out.values)
        if progress:
            progress(what, min(first + rows, len(values)), len(values))
    return present, problems
