"""Where the library's messages and progress reports become screen output: a rich logging handler for the
``mmfuse`` logger and a rich progress display fed by the estimators' ``progress`` callback."""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import Progress, TaskID

console = Console() if sys.stdout.isatty() else Console(width=160)  # logs and pipes get wide tables, not wrapped ones
errors = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=160)
MIN_ROWS_FOR_A_BAR = 500


def setup_logging(quiet: bool = False) -> None:
    """Show the library's messages on stderr (warnings only with ``quiet``)."""
    logger = logging.getLogger("mmfuse")
    logger.handlers.clear()
    handler = RichHandler(console=errors, show_time=False, show_path=False, show_level=False, markup=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


class ProgressBars:
    """An estimator ``progress`` callback ``(what, done, total)`` drawn as rich progress bars on a terminal."""

    def __init__(self) -> None:
        self.display = Progress(console=errors, transient=True)
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, what: str, done: int, total: int) -> None:
        if total < MIN_ROWS_FOR_A_BAR or not errors.is_terminal:
            return
        if what not in self.tasks:
            if not self.tasks:
                self.display.start()
            self.tasks[what] = self.display.add_task(what, total=total)
        self.display.update(self.tasks[what], completed=done)
        if done >= total:
            self.display.remove_task(self.tasks.pop(what))
            if not self.tasks:
                self.display.stop()

    def close(self) -> None:
        if self.tasks:
            self.display.stop()
            self.tasks.clear()


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[ProgressBars | bool]:
    """A progress callback for the duration of a command (False when disabled)."""
    if not enabled:
        yield False
        return
    bars = ProgressBars()
    try:
        yield bars
    finally:
        bars.close()
