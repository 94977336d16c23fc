"""JSON from cells, configs and request bodies, with its nesting depth and size checked before it is parsed: a cell
nested 5,000 levels deep is refused in one line, never a ``RecursionError``.

    loads(text, "sequence cell", max_depth=2)   # -> value, or ValueError naming what and which limit
    read_file(folder / "config.json", max_bytes=CONFIG_BYTES)   # a JSON file mmfuse reads, whoever wrote it

Limits (documented defaults; callers may pass tighter ones): ``MAX_DEPTH`` levels of ``[`` / ``{`` nesting and
``MAX_CHARS`` characters of one JSON text. Files: ``read_file`` checks the size before reading; the per-file limits
below leave 8x room over the largest each kind reaches in the project's runs (the demo's 32 MB portfolio.json:
1,000 LightGBM rounds of 10 classes).
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np

MAX_DEPTH = 32  # a config or request body; a sequence cell allows 2 ((steps, features)), a label list 1
MAX_CHARS = 64 * 2**20  # 64 Mi characters: ~8 M numbers in a sequence cell

SMALL_BYTES = 2**20          # manifest.json, a sample cache's check.json, a feature-cache entry's header
CONFIG_BYTES = 16 * 2**20    # config.json, a search index's index.json
REPORT_BYTES = 64 * 2**20    # metrics.json, data_report.json, a sample cache's problems.json
MODEL_BYTES = 256 * 2**20    # processors.json (vocabularies), portfolio.json and a saved member's state.json (trees)

_STRINGS = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.S)  # unrolled, possessive: no per-character state
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_OPEN = np.frombuffer(b"[{", np.uint8)


def nesting_depth(text: str) -> int:
    """The deepest ``[`` / ``{`` nesting of a JSON text (brackets inside strings not counted), in memory of the
    order of the brackets' count (a 4 MB string cell costs nothing)."""
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets.encode("ascii"), np.uint8)
    steps = np.where(np.isin(codes, _OPEN), np.int8(1), np.int8(-1))
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def loads(text: str | bytes, what: str, max_depth: int = MAX_DEPTH, max_chars: int = MAX_CHARS) -> Any:
    """Parse ``text`` as JSON; ValueError (naming ``what``) if it is longer than ``max_chars``, nested deeper than
    ``max_depth`` or not JSON."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{what} is not UTF-8 ({err.reason} at byte {err.start})") from None
    if len(text) > max_chars:
        raise ValueError(f"{what} holds {len(text):,} characters, above the limit of {max_chars:,}")
    depth = nesting_depth(text)
    if depth > max_depth:
        raise ValueError(f"{what} is nested {depth} levels deep, above the limit of {max_depth}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} is not valid JSON ({err.msg} at character {err.pos})") from None


def read_file(path: Path, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Parse the JSON file ``path``, its size checked before it is read; ValueError (naming the file) when it is
    larger than ``max_bytes``, not UTF-8, nested deeper than ``max_depth`` or not JSON; OSError when unreadable."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path.name} is not a regular file")
    size = info.st_size
    if size > max_bytes:
        raise ValueError(f"{path.name} holds {size:,} bytes, above the limit of {max_bytes:,} for this file")
    return loads(path.read_bytes(), path.name, max_depth, max_chars=max_bytes)
