"""A modality plugin's registration: how its columns are recognised, which input they feed, and its defaults.

A plugin package (``mmfuse.modalities.<name>``) registers one ``Modality`` per column type it handles::

    MODALITIES.add("image", Modality("image", input="image", processor="image", default_encoder="cnn",
                                     detect=looks_like_image_paths, priority=30, check=files_exist,
                                     traits=image_traits))

Detection tries the registered rules in ``priority`` order (lowest first); the first that returns a reason wins.
A detected column's traits (e.g. ``{"colour": False}`` for grayscale images) are what a preset's encoder rules
match on (``ModelConfig.rules``).
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import DataError
from .deadline import check_deadline

DetectRule = Callable[[pd.Series], "str | None"]   # column values -> a reason when they look like this modality
CheckRule = Callable[[str, pd.Series, Path], None]  # (column, values, table folder) -> raises DataError if wrong
TraitsRule = Callable[[pd.Series, Path], dict[str, Any]]  # (values, table folder) -> traits, e.g. {"colour": False}


WIDGETS = ("text", "number", "date", "select", "file")  # the fields the served page can draw


@dataclass(frozen=True)
class Cell:
    """How a value of a modality travels in a ``/predict`` request and is asked for on the served page.

    Attributes:
        file: a cell is a file (an upload: multipart, or base64 in JSON); else a value used as given.
        widget: the page's field, one of ``WIDGETS`` (select: the categories seen in training; date: a date and time).
        accept: for a file widget, the MIME types or suffixes an upload may have (HTML's ``accept``).
        suffix: the suffix the server gives an uploaded file (for a reader that goes by it, e.g. ``.npy``).
        lists: a JSON list of numbers is taken as the cell too (in JSON, or typed into a text field).
        hint: the text field's placeholder.
    """

    file: bool = False
    widget: str = "text"
    accept: str = ""
    suffix: str = ""
    lists: bool = False
    hint: str = ""

    def __post_init__(self) -> None:
        if self.widget not in WIDGETS:
            raise ValueError(f"widget must be one of {', '.join(WIDGETS)}, not {self.widget!r}")


@dataclass(frozen=True)
class Modality:
    """One kind of column.

    Attributes:
        name: the column modality (a ``--column-type`` value): text, image, numeric, ...
        input: the input kind its columns feed, which encoders are registered for and config sections are keyed by.
        processor: the processor kind built for its inputs, unless the chosen encoder names its own.
        default_encoder: the encoder used when the config names none for this input kind.
        detect: the detection rule (None: only by ``--column-type``); tried in ``priority`` order.
        check: validates a user's ``--column-type`` against the values (optional).
        grouped: all columns of a grouped input kind share one model input named after the kind (tabular).
        traits: what a column's values are like, for the presets' encoder rules (optional; JSON values).
        cell: how its values are sent to a served model and asked for on its page.
    """

    name: str
    input: str
    processor: str
    default_encoder: str
    detect: DetectRule | None = None
    priority: int = 100
    check: CheckRule | None = None
    grouped: bool = False
    traits: TraitsRule | None = None
    cell: Cell = Cell()


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or (isinstance(value, str) and not value.strip())


def resolve_path(value: Any, root: Path) -> Path:
    """A file named in a table cell: absolute, or relative to the table's folder."""
    path = Path(str(value).strip())
    return path if path.is_absolute() else root / path


def file_cell(value: Any, root: Path) -> Path:
    """The file a cell names (``resolve_path``), checked before anything opens it: FileNotFoundError when there is
    none, ValueError when it is not a regular file (a device such as /dev/zero, which reads until memory runs out; a
    FIFO, which blocks forever; a socket or a folder), links followed."""
    check_deadline()  # a request's files: its time limit is checked between them
    path = resolve_path(value, root)
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else
                "not a regular file")
        raise ValueError(f"not a regular file ({kind})")
    return path


SAMPLE = 200  # detection looks at the first SAMPLE non-empty values


def nonempty_strings(values: pd.Series) -> pd.Series:
    """The column's non-empty values as stripped strings."""
    return values.dropna().astype(str).str.strip().loc[lambda s: s != ""]


def path_share(values: pd.Series, suffixes: tuple[str, ...]) -> float:
    """Share of the first values that end in one of ``suffixes`` (file paths of one kind)."""
    sample = nonempty_strings(values).head(SAMPLE)
    return float(sample.str.lower().str.endswith(suffixes).mean()) if len(sample) else 0.0


def check_files_exist(modality: str) -> CheckRule:
    """A ``--column-type`` check for file columns: at least one of the first 50 values is an existing file."""

    def check(name: str, values: pd.Series, root: Path) -> None:
        strings = nonempty_strings(values).head(50)
        if len(strings) and not any((root / p).is_file() or Path(p).is_file() for p in strings):
            raise DataError(f"column {name!r} was set to {modality}, but none of its first values is an existing "
                            f"file (e.g. {strings.iloc[0]!r}, looked in {root})")

    return check
