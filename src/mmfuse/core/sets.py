"""Set cells: several values of one modality in one cell (several photos of a listing, the clips of a call, the
reviews of a product).

A set cell is a JSON list of strings (``["a.png", "b.png"]``; a list of numbers stays a sequence), a string split by
the column's separator (``--set-sep photos=|``), a folder (its files), or a glob (``shots/17-*.jpg``); folders and
globs list their files sorted by path, and an empty match is an empty set (the input is missing in that row).

    set_elements('["a.png", "b.png"]', root)   # -> ["a.png", "b.png"]
    set_elements("a.png|b.png", root, sep="|")  # -> ["a.png", "b.png"]

Limit (documented default): ``MAX_SET_ELEMENTS`` elements per cell; a model reads at most the largest training set
(up to this limit), the first elements of a longer set (reported as cut).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..io.bounded_json import loads
from .modality import SAMPLE, is_empty, nonempty_strings, resolve_path

MAX_SET_ELEMENTS = 64  # elements a set cell may hold (its JSON list, split, folder or glob)
GLOB_CHARACTERS = "*?["


def set_elements(value: Any, root: Path, sep: str | None = None, limit: int = MAX_SET_ELEMENTS) -> list[str]:
    """The elements of one set cell (see the module's docstring); [] for an empty cell or an empty match.
    ValueError (in words) for a cell that is not a set: a JSON list holding anything but strings, a list above
    ``limit`` elements."""
    if is_empty(value):
        return []
    text = str(value).strip()
    if sep:
        elements = [part.strip() for part in text.split(sep) if part.strip()]
    elif text.startswith("["):
        parsed = loads(text, "set cell", max_depth=1)
        if not isinstance(parsed, list) or not all(isinstance(e, str) for e in parsed):
            raise ValueError("a set cell must be a JSON list of strings (file paths or texts)")
        elements = [e.strip() for e in parsed if e.strip()]
    elif any(c in text for c in GLOB_CHARACTERS):
        pattern = Path(text)
        base = pattern if pattern.is_absolute() else root / pattern
        anchor = Path(base.anchor)
        elements = sorted(str(p) for p in anchor.glob(str(base.relative_to(anchor))) if p.is_file())
    elif resolve_path(text, root).is_dir():
        elements = sorted(str(p) for p in resolve_path(text, root).iterdir() if p.is_file() and not p.name.startswith("."))
    else:
        elements = [text]
    if len(elements) > limit:
        raise ValueError(f"a set of {len(elements)} elements, above the limit of {limit}")
    return elements


def looks_like_set_cells(values: pd.Series, root: Path) -> bool:
    """Whether at least 90% of a column's first values are set cells in any of the forms (a JSON list of strings, a
    folder, a glob; one column may mix them), and the values that are not JSON lists are paths, not texts."""
    sample = nonempty_strings(values).head(SAMPLE)
    if sample.empty:
        return False
    plain = sample[~sample.str.startswith("[")]
    if len(plain) and plain.str.contains(r"\s").mean() > 0.1:  # texts, not folders or globs
        return False
    return sum(_is_set_cell(value, root) for value in sample) >= 0.9 * len(sample)


def _is_set_cell(value: str, root: Path) -> bool:
    """One value as a set: a non-empty JSON list of strings (a list of numbers is a sequence), a glob that matches
    (or matches more files than a set may hold), or a folder."""
    if value.startswith("["):
        try:
            parsed = loads(value, "set cell", max_depth=1)
        except ValueError:
            return False
        return isinstance(parsed, list) and len(parsed) > 0 and all(isinstance(e, str) for e in parsed)
    if any(c in value for c in GLOB_CHARACTERS):
        try:
            return bool(set_elements(value, root))
        except ValueError:  # more files than a set may hold: a set still
            return True
    return resolve_path(value, root).is_dir()


def exploded(values: pd.Series, root: Path, sep: str | None = None) -> tuple[pd.Series, list[int]]:
    """Every element of a column's readable set cells as one Series (for detection and fitting), and each
    element's row position; cells that are not sets are left out."""
    elements, rows = [], []
    for i, value in enumerate(values):
        try:
            cell = set_elements(value, root, sep)
        except ValueError:
            continue
        elements += cell
        rows += [i] * len(cell)
    return pd.Series(elements, dtype=object), rows
