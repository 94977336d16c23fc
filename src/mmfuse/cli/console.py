"""Where the library's messages and progress reports become screen output: a rich logging handler for the
``mmfuse`` logger and a rich progress display (or, in a log, timed progress lines) fed by the estimators'
``progress`` callback."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import Progress, TaskID

console = Console() if sys.stdout.isatty() else Console(width=160)  # logs and pipes get wide tables, not wrapped ones
errors = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=160)
LOG_EVERY = 10.0  # seconds between two progress lines of one stage in a log


def setup_logging(quiet: bool = False) -> None:
    """Show the library's messages on stderr (warnings only with ``quiet``)."""
    logger = logging.getLogger("mmfuse")
    logger.handlers.clear()
    # a terminal gets rich's handler (it keeps the progress bars below the messages); a log gets plain lines
    handler = RichHandler(console=errors, show_time=False, show_path=False, show_level=False, markup=False) \
        if errors.is_terminal else logging.StreamHandler(errors.file)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


class ProgressBars:
    """An estimator ``progress`` callback ``(what, done, total)``: rich progress bars on a terminal; elsewhere (a log
    file, a pipe) a line every ``LOG_EVERY`` seconds per stage with what is done and the rate, and one when a stage
    that printed a line ends."""

    def __init__(self) -> None:
        self.display = Progress(console=errors, transient=True)
        self.tasks: dict[str, TaskID] = {}
        self.logged: dict[str, tuple[float, float]] = {}  # what -> (start, time of the last line)

    def __call__(self, what: str, done: int, total: int) -> None:
        if errors.is_terminal:
            self._draw(what, done, total)
        else:
            self._log(what, done, total)

    def _draw(self, what: str, done: int, total: int) -> None:
        if what not in self.tasks:
            if not self.tasks:
                self.display.start()
            self.tasks[what] = self.display.add_task(what, total=total)
        self.display.update(self.tasks[what], completed=done)
        if done >= total:
            self.display.remove_task(self.tasks.pop(what))
            if not self.tasks:
                self.display.stop()

    def _log(self, what: str, done: int, total: int) -> None:
        now = time.monotonic()
        start, last = self.logged.setdefault(what, (now, now))
        if done < total and now - last < LOG_EVERY:
            return
        if done >= total:
            del self.logged[what]
            if last == start and now - start < LOG_EVERY:  # a short stage: no line
                return
        else:
            self.logged[what] = (start, now)
        rate = done / (now - start) if now > start else 0.0
        errors.print(f"{what}: {done:,}/{total:,} ({100 * done / max(total, 1):.0f}%, {rate:,.1f}/s, "
                     f"{now - start:.0f} s)", highlight=False, soft_wrap=True)

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
