"""Exclusive locks (``fcntl.flock``): on a file, for processes that share a cache folder (DDP ranks); on a folder,
for a fit that must be the only one writing to its output."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def file_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created, with its folder, if needed) for the block; another process asking
    for it waits. Yields False, holding nothing, where the file cannot be created (a read-only cache)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "w")
    except OSError:
        yield False
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def folder_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on the folder ``path`` (created if needed) for the block without waiting: yields False
    at once where another process holds it."""
    path.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(handle)
