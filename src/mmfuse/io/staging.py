"""Folders written whole or not at all: write into a hidden staging folder beside the destination, then exchange.

The new folder takes the old one's place in one atomic step (Linux's ``renameat2(RENAME_EXCHANGE)``), so whatever
signal arrives, the destination holds the old folder or the new one. Where the exchange is not available (another
system or file system) it is two renames, and the next save into the same destination recovers from a kill between
them: the old folder, left under its hidden ``.NAME.replaced-PID`` name, goes back in place. Staging folders that a
dead process left (``.NAME.writing-PID``: a SIGTERM or SIGKILL mid-save) are removed by the next save there; a live
process's are never touched.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

RENAME_EXCHANGE = 2
AT_FDCWD = -100
_libc = ctypes.CDLL(None, use_errno=True)


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically; False where the system or file system cannot (nothing changed then)."""
    renameat2 = getattr(_libc, "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: no exchange here
        return False
    raise OSError(error, os.strerror(error), str(a))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(final: Path) -> None:
    """Tidy what interrupted saves into ``final`` left beside it: put an old folder back where a kill between the two
    renames left none at ``final``; remove the staging and replaced folders of processes that are gone."""
    pattern = re.compile(rf"\.{re.escape(final.name)}\.(writing|replaced)-(\d+)")
    left = [(m.group(1), int(m.group(2)), p) for p in final.parent.glob(f".{final.name}.*")
            if (m := pattern.fullmatch(p.name)) and not alive(int(m.group(2))) and int(m.group(2)) != os.getpid()]
    for kind, _, path in left:
        if kind == "replaced" and not final.exists():
            path.rename(final)
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


@contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """A hidden folder beside ``final`` to write into. On success it takes ``final``'s place (exchanged with the
    folder already there, which is then removed); on an error it is removed and ``final`` is untouched. A kill at any
    moment leaves either the old ``final`` or the new one, never a half-written or mixed folder."""
    final.parent.mkdir(parents=True, exist_ok=True)
    recover(final)
    staging = final.parent / f".{final.name}.writing-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if final.exists() and exchange(staging, final):
        shutil.rmtree(staging, ignore_errors=True)  # the old folder, now under the staging name
        return
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
