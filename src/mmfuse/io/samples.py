"""On-disk cache of preprocessed samples: one input's stored rows for one table, written once, read by row.

An entry is a folder ``ROOT/samples/<key>/`` holding ``values.npy`` (N, ...) in the processor's stored dtype,
``present.npy`` (N,) bool, ``problems.json`` (the values that could not be used, as the in-memory transform reports
them) and ``check.json`` (the rows, row shape, dtype and each file's size and SHA-256, written with them). The key is
the SHA-256 of the processor's state (its settings and fitted statistics), the table's folder and every value with
its file's size and modification time: a changed file, setting or statistic is a miss, never a stale hit. Entries are
written into a hidden staging folder and renamed into place, under an exclusive lock (``io/locks.py``), so processes
that share the cache (DDP ranks) fill each entry once and never read half of one. An entry that does not match its
check (truncated, damaged, a folder in a file's place, no check) is a miss: it is filled again, and the first such
entry is logged.

Rows are read with ``os.preadv`` into the batch's own buffer rather than through a memory map, so the pages stay in
the operating system's page cache instead of counting against the process's memory as an epoch goes by.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ContextManager, Iterator

import numpy as np
import torch
from torch import Tensor

from .bounded_json import REPORT_BYTES, SMALL_BYTES, read_file
from .cache import default_cache_dir
from .hashing import sha256_bytes, sha256_file
from .locks import file_lock
from .staging import staged_folder

log = logging.getLogger("mmfuse")


def sample_cache_dir(feature_cache: str | Path | None) -> Path:
    """Where sample entries live: the ``samples`` folder of the feature cache (``cache_dir``, else the default)."""
    return Path(feature_cache or default_cache_dir()) / "samples"


def entry_key(state: dict[str, Any], root: Path, values: list[Any]) -> str:
    """The key of one input's rows: processor state, table folder, and each value with its file's size and mtime
    (values that are not files, such as inline sequences, count by their text)."""
    parts = [json.dumps(state, sort_keys=True, default=str), str(root)]
    for value in values:
        text = str(value)
        try:
            path = Path(text.strip())
            stat = (path if path.is_absolute() else root / path).stat()
            parts.append(f"{text}\0{stat.st_size}\0{stat.st_mtime_ns}")
        except (OSError, ValueError):  # not a file name (too long, NUL byte, missing): its text is its identity
            parts.append(text)
    return sha256_bytes("\n".join(parts).encode())


class SampleRows:
    """Rows of a ``values.npy`` file, by position: ``rows[index]`` -> (len(index), ...) tensor read from disk.

    ``take`` gives a view of some rows without reading them. The file is opened once per process (a DataLoader
    worker opens its own), and never mapped.
    """

    def __init__(self, path: Path, index: np.ndarray | None = None):
        self.path = path
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            self.offset = f.tell()
        if fortran:
            raise ValueError(f"{path}: a Fortran-ordered array is not a sample file")
        self.row_shape, self.dtype = tuple(shape[1:]), np.dtype(dtype)
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        self.index = np.arange(shape[0]) if index is None else index
        self._fd: tuple[int, int] | None = None  # (pid, descriptor)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.row_shape)

    def nbytes(self) -> int:
        return len(self) * self.row_bytes

    def take(self, positions: Tensor | np.ndarray) -> "SampleRows":
        view = SampleRows.__new__(SampleRows)
        view.__dict__.update(self.__dict__)
        view.index, view._fd = self.index[np.asarray(positions)], None
        return view

    def __getitem__(self, positions: Tensor | np.ndarray | list[int]) -> Tensor:
        rows = self.index[np.asarray(positions, dtype=np.int64)]
        out = np.empty((len(rows), *self.row_shape), self.dtype)
        flat = out.reshape(-1).view(np.uint8).reshape(len(rows), self.row_bytes)  # (n, bytes of a row)
        fd = self._descriptor()
        for j, row in enumerate(rows.tolist()):
            got = os.preadv(fd, [flat[j]], self.offset + row * self.row_bytes)
            if got != self.row_bytes:
                raise OSError(f"{self.path}: short read at row {row} (the sample cache file was truncated)")
        return torch.from_numpy(out)

    def _descriptor(self) -> int:
        if self._fd is None or self._fd[0] != os.getpid():
            self._fd = (os.getpid(), os.open(self.path, os.O_RDONLY))
        return self._fd[1]

    def __getstate__(self) -> dict[str, Any]:  # a spawned worker opens its own descriptor
        return {**self.__dict__, "_fd": None}

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None and self._fd[0] == os.getpid():
            os.close(self._fd[1])


class SampleWriter:
    """Writes ``values.npy`` of an entry chunk by chunk (chunks in row order); the header is written with the
    first chunk, whose row shape and dtype every later chunk must share. ``finish`` gives the entry's presence mask
    and problems."""

    def __init__(self, path: Path, n_rows: int):
        self.path, self.n_rows, self.written = path, n_rows, 0
        self.file, self.digest, self.size = open(path, "wb"), hashlib.sha256(), 0
        self.row_shape: tuple[int, ...] | None = None
        self.dtype: np.dtype | None = None
        self.present: Tensor | None = None
        self.problems: list[dict[str, Any]] = []

    def finish(self, present: Tensor, problems: list[dict[str, Any]]) -> None:
        self.present, self.problems = present, problems

    def write(self, chunk: np.ndarray) -> None:
        chunk = np.ascontiguousarray(chunk)
        if self.row_shape is None:
            self.row_shape, self.dtype = chunk.shape[1:], chunk.dtype
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": np.lib.format.dtype_to_descr(chunk.dtype),
                                                          "fortran_order": False,
                                                          "shape": (self.n_rows, *self.row_shape)})
            self._write(header.getvalue())
        elif chunk.shape[1:] != self.row_shape or chunk.dtype != self.dtype:
            raise ValueError(f"sample rows changed shape: {chunk.shape[1:]} {chunk.dtype} after "
                             f"{self.row_shape} {self.dtype}")
        self._write(chunk.tobytes())
        self.written += len(chunk)

    def _write(self, data: bytes) -> None:
        self.file.write(data)
        self.digest.update(data)
        self.size += len(data)

    def close(self) -> None:
        self.file.close()
        if self.written != self.n_rows or self.present is None:
            raise ValueError(f"{self.path}: {self.written} rows written of {self.n_rows}, or not finished")


class SampleCache:
    """Entries under one folder: ``find`` a complete entry, or ``fill`` one under the entry's lock."""

    def __init__(self, folder: Path):
        self.folder = folder

    def find(self, key: str) -> tuple[SampleRows, Tensor, list[dict[str, Any]]] | None:
        """(rows, present (N,) bool, problems) of a complete entry that matches its check, or None: no entry, or
        one that failed its check (``failed`` says why; the first is logged)."""
        entry, self.failed = self.folder / key, None
        if not entry.exists():
            return None
        try:
            check = read_file(entry / "check.json", SMALL_BYTES)
            why = _mismatch(entry, check)
            if why is None:
                rows = SampleRows(entry / "values.npy")
                present = torch.from_numpy(np.load(entry / "present.npy", allow_pickle=False))
                stored = (len(rows), *rows.row_shape, str(rows.dtype))
                if stored == (check["rows"], *check["row_shape"], check["dtype"]) and len(present) == len(rows):
                    return rows, present, read_file(entry / "problems.json", REPORT_BYTES)
                why = "its files do not hold the rows its check names"
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            why = f"cannot be read ({err})"
        self.failed = why
        if not SampleCache._warned:
            SampleCache._warned = True
            log.warning(f"sample cache entry {entry} {why}: filled again")
        return None

    _warned = False  # one warning per process

    def lock(self, key: str) -> ContextManager[bool]:
        """The entry's exclusive lock: another process filling the same entry waits here, then finds it."""
        return file_lock(self.folder / f".{key}.lock")

    @contextmanager
    def fill(self, key: str, n_rows: int) -> Iterator[SampleWriter]:
        """Write an entry's values through the writer, then ``writer.finish(present, problems)``. The entry appears
        whole when the block ends, or not at all on an error."""
        with staged_folder(self.folder / key) as staging:
            writer = SampleWriter(staging / "values.npy", n_rows)
            try:
                yield writer
            finally:
                writer.file.close()
            writer.close()
            np.save(staging / "present.npy", writer.present.numpy(), allow_pickle=False)
            (staging / "problems.json").write_text(json.dumps(writer.problems))
            check = {"rows": writer.n_rows, "row_shape": list(writer.row_shape or ()), "dtype": str(writer.dtype),
                     "files": {"values.npy": [writer.size, writer.digest.hexdigest()],
                               **{name: [(staging / name).stat().st_size, sha256_file(staging / name)]
                                  for name in ("present.npy", "problems.json")}}}
            (staging / "check.json").write_text(json.dumps(check))


def _mismatch(entry: Path, check: dict[str, Any]) -> str | None:
    """Why an entry's files do not match its check (size, then SHA-256), or None."""
    for name, (size, sha) in check["files"].items():
        path = entry / name
        if not path.is_file():
            return f"lacks {name}"
        if path.stat().st_size != size:
            return f"has a {name} of {path.stat().st_size:,} bytes, not {size:,} (truncated?)"
        if sha256_file(path) != sha:
            return f"has a {name} that fails its checksum (damaged)"
    return None
