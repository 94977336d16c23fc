"""Request rows -> a table the model reads, with every file the request carries written to a folder of the server's.

Each modality's registration says how its cells travel (``core.modality.Cell``). A value cell (text, a number, a
category, a date) is used as given. A file cell must be an upload: base64 in JSON (a ``data:...;base64,`` URL is
fine) or a multipart file; the bytes are written under the request's own temporary folder with a name the server
makes, so no path in a request is ever opened; an upload that is an image is checked against the pixel limit by its
header first. A modality that takes lists (sequences) also takes a JSON list of numbers. A set column (several
values per cell) takes a list of such cells (in multipart: the field given once per element), at most
``MAX_SET_ELEMENTS``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.columns import ColumnInfo
from ..core.modality import Cell
from ..core.sets import MAX_SET_ELEMENTS
from ..data.surrogates import LONE
from ..data.table import Table
from ..io.bounded_json import loads
from ..io.images import ImageTooLarge, open_image
from ..io.npy import npy_header
from ..registry import MODALITIES

DATA_URL = re.compile(r"^data:[\w/+.-]*;base64,")


class RequestError(ValueError):
    """A request field that cannot be used: answered with 422 naming ``field`` (a lone surrogate in a name the
    request gave is written U+FFFD: no answer could hold it)."""

    def __init__(self, field: str, message: str):
        field, message = LONE.sub("\ufffd", field), LONE.sub("\ufffd", message)
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass
class Upload:
    """A file sent with a request (multipart), before it is written to the request's folder."""

    filename: str
    content: bytes


def decode_base64(value: str, field: str) -> bytes:
    try:
        content = base64.b64decode(DATA_URL.sub("", value.strip()), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(field, "expected the file's bytes as base64 (the server does not read paths)") from None
    if not content:
        raise RequestError(field, "the file is empty")
    return content


def request_table(rows: list[dict[str, Any]], columns: list[ColumnInfo], folder: Path, max_pixels: int) -> Table:
    """JSON / form rows -> a Table rooted at ``folder`` (the request's temporary folder); an image above
    ``max_pixels`` (by its header) is refused."""
    known = {c.name: c for c in columns if c.modality != "ignore"}
    cells: list[dict[str, Any]] = []
    for r, row in enumerate(rows):
        if not isinstance(row, dict):
            raise RequestError(f"rows[{r}]", "each row must be an object of column: value")
        unknown = sorted(set(row) - set(known) - {c.name for c in columns})
        if unknown:
            raise RequestError(f"rows[{r}].{unknown[0]}", f"not a column of this model (columns: {', '.join(known)})")
        cells.append({name: (_set_cell if "set" in info.traits else _cell)(row.get(name), info, folder,
                                                                           f"rows[{r}].{name}", r, max_pixels)
                      for name, info in known.items()})
    return Table(pd.DataFrame(cells, columns=list(known)), folder, "request")


def _set_cell(value: Any, info: ColumnInfo, folder: Path, field: str, row: int, max_pixels: int) -> Any:
    """A set column's cell: a list of element cells (one value: a set of one), written as the column's cells are
    (joined by its separator, else a JSON list)."""
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    if len(values) > MAX_SET_ELEMENTS:
        raise RequestError(field, f"a set of {len(values)} elements; a set holds at most {MAX_SET_ELEMENTS}")
    elements = [_cell(v, info, folder, f"{field}[{j}]", row, max_pixels, f"-{j}") for j, v in enumerate(values)]
    elements = [str(e) for e in elements if e is not None]
    sep = info.traits["set"].get("sep")
    return sep.join(elements) if sep else json.dumps(elements)


def _cell(value: Any, info: ColumnInfo, folder: Path, field: str, row: int, max_pixels: int, tag: str = "") -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and LONE.search(value):
        raise RequestError(field, "holds a lone surrogate (e.g. \\ud800 without its pair), which is not text")
    cell = cell_of(info.modality)
    if not cell.file:
        if not isinstance(value, (str, int, float, bool)):
            raise RequestError(field, f"expected a {info.modality} value, got {type(value).__name__}")
        return value
    if cell.lists and isinstance(value, str) and value.strip().startswith("["):
        try:
            value = loads(value, "the field", max_depth=2)  # a form field holding a JSON list
        except ValueError as err:
            raise RequestError(field, f"expected a JSON list of numbers: {err}") from None
    if cell.lists and isinstance(value, list):
        return value
    if isinstance(value, Upload):
        content = value.content
        if not content:
            raise RequestError(field, "the uploaded file is empty")
    elif isinstance(value, str):
        content = decode_base64(value, field)
    else:
        raise RequestError(field, f"expected a {info.modality} file as base64 or an upload")
    check_pixels(content, field, max_pixels)
    if cell.suffix == ".npy":
        check_npy(content, field)
    name = f"{row}-{re.sub(r'[^A-Za-z0-9_]', '_', info.name)}{tag}{cell.suffix}"
    (folder / name).write_bytes(content)
    return name


def cell_of(modality: str) -> Cell:
    """How a cell of ``modality`` is sent (its plugin's registration)."""
    return MODALITIES.get(modality).cell


def check_npy(content: bytes, field: str) -> None:
    """Refuse an .npy upload whose header cannot be read or claims more than the file holds or than the limit (as
    an image's pixel claim is refused: what a header says is checked at the door)."""
    try:
        npy_header(io.BytesIO(content), len(content))
    except ValueError as err:
        raise RequestError(field, str(err)) from None


def check_pixels(content: bytes, field: str, max_pixels: int) -> None:
    """Refuse an upload that is an image whose header declares more than ``max_pixels`` (any other file, or an
    unreadable image, is left to the model, which masks what it cannot read and says so)."""
    try:
        with open_image(io.BytesIO(content)) as img:
            width, height = img.size
    except ImageTooLarge:
        raise RequestError(field, "image too large") from None
    except (OSError, ValueError):
        return
    if width * height > max_pixels:
        raise RequestError(field, f"image of {width} x {height} pixels; this server takes at most "
                                  f"{max_pixels / 1e6:g} megapixels")
