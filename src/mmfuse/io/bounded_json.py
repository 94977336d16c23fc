"""JSON from cells, configs and request bodies, with its nesting depth and size checked before it is parsed: a cell
nested 5,000 levels deep is refused in one line, never a ``RecursionError``.

    loads(text, "sequence cell", max_depth=2)   # -> value, or ValueError naming what and which limit

Limits (documented defaults; callers may pass tighter ones): ``MAX_DEPTH`` levels of ``[`` / ``{`` nesting and
``MAX_CHARS`` characters of one JSON text.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

MAX_DEPTH = 32  # a config or request body; a sequence cell allows 2 ((steps, features)), a label list 1
MAX_CHARS = 64 * 2**20  # 64 Mi characters: ~8 M numbers in a sequence cell

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_OPEN, _CLOSE = np.frombuffer(b"[{", np.uint8), np.frombuffer(b"]}", np.uint8)


def nesting_depth(text: str) -> int:
    """The deepest ``[`` / ``{`` nesting of a JSON text (brackets inside strings not counted)."""
    codes = np.frombuffer(_STRINGS.sub('""', text).encode("utf-8", "surrogatepass"), np.uint8)
    steps = np.isin(codes, _OPEN).astype(np.int32) - np.isin(codes, _CLOSE).astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


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
