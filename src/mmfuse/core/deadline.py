"""A time limit that long work checks between its steps (a file read, a batch, a member): a thread cannot be
cancelled, so the work of a request that ran out of time stops itself at its next check and frees what it holds.

    with deadline(time.monotonic() + 30):
        ...                 # check_deadline() anywhere below, in this thread, raises DeadlineExceeded after 30 s
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

from ..errors import MMFuseError

_local = threading.local()


class DeadlineExceeded(MMFuseError):
    """The work ran past the deadline its caller set."""


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """Work in this block, in this thread, stops at its next ``check_deadline`` once ``time.monotonic()`` passes
    ``at``."""
    before = getattr(_local, "at", None)
    _local.at = at
    try:
        yield
    finally:
        _local.at = before


def check_deadline() -> None:
    """Raise ``DeadlineExceeded`` if this thread's work is past its deadline (a no-op where none is set)."""
    at = getattr(_local, "at", None)
    if at is not None and time.monotonic() > at:
        raise DeadlineExceeded("the work ran past its time limit")
