"""Folders written whole or not at all: write into a hidden staging folder beside the destination, then rename."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """A hidden folder beside ``final`` to write into. On success it takes ``final``'s place by renames (a folder
    already there is moved aside, then removed); on an error it is removed and ``final`` is untouched. A kill at any
    moment leaves either the old ``final`` or the new one, never a half-written or mixed folder."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.writing-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = final.parent / f".{final.name}.replaced-{os.getpid()}"
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_file(final: Path) -> Iterator[Path]:
    """A hidden temporary path beside ``final`` (its missing parent folders created) to write into; on success it
    replaces ``final`` in one rename, on an error it is removed: ``final`` is never half-written."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.writing-{os.getpid()}"
    try:
        yield staging
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    os.replace(staging, final)
