"""Lone UTF-16 surrogates (a code point in U+D800-U+DFFF without its pair): a JSON ``"\\ud800"`` escape or a Python
string can hold one, but no text encoding can write it, so tokenizers, Arrow and every output file would fail on it.
Tables get U+FFFD (the replacement character) in its place, and the reader says where; pandas' own JSON reader would
drop it without a word.
"""

from __future__ import annotations

import logging
import re

import pandas as pd

log = logging.getLogger("mmfuse")

LONE = re.compile("[\ud800-\udfff]")
# left to right: an escaped backslash (the "u" after it is text), a high + low surrogate pair (a real character),
# then any other surrogate escape (lone)
_ESCAPES = re.compile(r"(\\\\)|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def replace_escapes(text: str, file: str) -> str:
    """JSON text with every lone surrogate escape replaced by ``\\ufffd``; says how many and the first line."""
    found: list[int] = []

    def swap(match: re.Match) -> str:
        if match.group(1) or len(match.group(0)) == 12:
            return match.group(0)
        found.append(match.start())
        return "\\ufffd"

    text = _ESCAPES.sub(swap, text)
    if found:
        line = text.count("\n", 0, found[0]) + 1
        log.warning(f"{file}: {len(found)} lone surrogate escape(s) (first on line {line}), which no text "
                    f"can hold: read as U+FFFD")
    return text


def replace_in_frame(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """``frame`` with lone surrogates in its object columns' strings replaced by U+FFFD (a copy where any were);
    says how many cells and the first one (row, column)."""
    changed, first = 0, None
    out = frame
    for column in frame.columns[[dtype == object for dtype in frame.dtypes]]:
        hit = frame[column].map(lambda v: isinstance(v, str) and LONE.search(v) is not None).to_numpy(dtype=bool)
        if hit.any():
            out = out.copy() if out is frame else out
            out[column] = frame[column].where(~hit, frame[column][hit].map(lambda v: LONE.sub("\ufffd", v)))
            changed += int(hit.sum())
            first = first or (int(hit.argmax()), column)
    if changed:
        log.warning(f"{name}: {changed} cell(s) held lone surrogates (first: row {first[0]}, column {first[1]!r}), "
                    f"which no text can hold: read as U+FFFD")
    return out
