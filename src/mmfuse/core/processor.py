"""The processor contract: one per model input, fitted on the training split only, with explicit JSON state.

A processor turns raw column values into a stored tensor once (``transform``: decode, tokenise, impute) and a batch
of stored rows into model input every step (``prepare_batch``: scale, normalise, augment at train time). Values
that are empty or cannot be read are never dropped silently: ``transform`` returns them as ``Problem`` records and
a per-row ``present`` mask; the input pipeline applies the user's ``--on-bad-row`` policy.

State is explicit, as in scikit-learn: constructor parameters are stored under their own names, fitted state in
attributes ending in ``_``. ``state_dict()`` saves exactly those two groups; ``from_state`` calls ``__init__`` with
the parameters and sets the fitted attributes, then ``_setup`` rebuilds helpers that are not JSON.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor

from ..errors import BundleError
from ..registry import PROCESSORS
from .columns import ColumnInfo
from .modality import is_empty, resolve_path  # noqa: F401  (cell helpers of the plugin API, README "Plugins")

EMPTY, UNREADABLE, UNKNOWN, TRUNCATED = "empty", "unreadable", "unknown_category", "truncated"
Progress = Callable[[str, int, int], None]              # (what, done, total): called as long work advances
Corruption = Callable[[Tensor, float, Any], Tensor]     # (prepared input (B, ...), level 0..1, torch.Generator)


@dataclass(frozen=True)
class Problem:
    """One value that could not be used as is.

    ``kind``: empty (masked), unreadable (per ``--on-bad-row``), unknown_category (unknown bucket), truncated
    (a sequence, clip or text longer than the configured length, cut; a number far outside the training range,
    clipped).
    """

    row: int
    column: str
    kind: str
    detail: str


@dataclass
class Transformed:
    values: Tensor                      # (N, ...) stored representation
    present: Tensor                     # (N,) bool: False where the input is missing for that row
    problems: list[Problem] = field(default_factory=list)


@dataclass
class FlatView:
    """What a linear or tree learner reads of one input's prepared batch of B rows (each part optional): the
    portfolio's members (``mmfuse.portfolio``) learn from these, computed from the same stored rows as the network.

    ``dense`` (B, D): numbers on a common scale (standardised values, per-clip statistics, pooled pixels);
    ``embedding`` (B, E): frozen backbone features (compressed before a tree model reads them);
    ``ids`` (B, L) long: ids of a text's distinct n-grams or tokens, 0 = padding, below ``vocab``;
    ``categories`` (B, C) long: 0 = missing, 1 = unknown, 2.. the training categories (``cardinalities`` per column).
    """

    dense: Tensor | None = None
    embedding: Tensor | None = None
    ids: Tensor | None = None
    vocab: int = 0
    categories: Tensor | None = None
    cardinalities: tuple[int, ...] = ()


FLAT_WIDTH = 256  # the widest default flat view (``default_dense``)


def default_dense(x: Tensor) -> Tensor:
    """(B, ...) float -> (B, D) float32: each row flattened; a row of more than ``FLAT_WIDTH`` values is averaged
    over ``FLAT_WIDTH`` consecutive runs of them (the last run shorter), so a picture or a sequence stays a few
    hundred numbers."""
    rows = x.reshape(len(x), -1).float()
    if rows.shape[1] <= FLAT_WIDTH:
        return rows
    return torch.stack([run.mean(1) for run in rows.tensor_split(FLAT_WIDTH, dim=1)], dim=1)


def with_progress(values: Any, progress: Progress | None, what: str) -> Iterator[tuple[int, Any]]:
    """``enumerate(values)`` that reports to ``progress`` every 500 rows and once at the end."""
    for i, value in enumerate(values):
        if progress and i % 500 == 0:
            progress(what, i, len(values))
        yield i, value
    if progress:
        progress(what, len(values), len(values))


def trim_padding(ids: Tensor, start: int = 0) -> Tensor:
    """(B, W) rows whose columns from ``start`` on are left-aligned ids (0 = padding) -> the same rows without the
    trailing padding columns no row of the batch uses (at least one id column kept)."""
    return ids[:, : start + int((ids[:, start:] != 0).sum(1).max().clamp(min=1))]


class NoParams(BaseModel):
    """Preprocessing settings of a processor that has none."""

    model_config = ConfigDict(extra="forbid")


class Processor:
    """Base class. Subclasses set ``kind`` (their registry name) and ``modality`` (the input kind they feed).

    ``Params``: the pydantic model of the settings a config's ``preprocess.<input kind>`` section may give.
    ``shared_settings``: for a processor an encoder brings, the ``preprocess.<input kind>`` settings it reads too.
    ``ragged``: ``prepare_batch`` gives (B, W) rows whose width W follows the batch (ids trimmed of padding).
    ``streamable``: its stored rows are large (pixels, frames, features) and may be kept on disk
    (``data/streaming.py``); ``transform`` must then give rows of one shape whatever the chunk.
    ``max_chars``: the longest string cell it reads; the pipeline makes a longer one unreadable before it sees it.
    ``flat_view``: its prepared batches give the portfolio's members a view (``flat``); False when their numbers
    mean nothing to a linear model or a tree (then the network alone reads the input).
    """

    kind: ClassVar[str]
    modality: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams
    shared_settings: ClassVar[tuple[str, ...]] = ()
    ragged: ClassVar[bool] = False
    streamable: ClassVar[bool] = False
    max_chars: ClassVar[int | None] = None
    flat_view: ClassVar[bool] = True

    @classmethod
    def for_input(cls, columns: list[ColumnInfo], settings: dict[str, Any]) -> "Processor":
        """A processor for one model input: its column(s) and settings (those the constructor takes are used)."""
        accepted = inspect.signature(cls).parameters
        return cls(columns[0].name, **{k: v for k, v in settings.items() if k in accepted})

    def input_values(self, frame) -> Any:
        """The slice of a table this processor reads (default: its ``column``)."""
        return frame[self.column]

    def fit(self, values: Any, root: Path, progress: Progress | None = None) -> "Processor":
        raise NotImplementedError

    def transform(self, values: Any, root: Path, progress: Progress | None = None) -> Transformed:
        raise NotImplementedError

    def prepare_batch(self, x: Tensor, train: bool) -> Tensor:
        """Stored rows (B, ...) -> model input (B, ...). Identity unless overridden."""
        return x

    def encoder_kwargs(self) -> dict[str, Any]:
        """What the encoder must know about its input (vocabulary size, channels, ...)."""
        return {}

    def flat(self, x: Tensor) -> FlatView:
        """A prepared batch (B, ...) as the portfolio's linear and tree members read it. By default (a plugin's
        processor): a float batch's rows flattened into ``dense`` numbers (``default_dense``); another batch, or a
        processor whose ``flat_view`` is False, gives nothing (the input then feeds the network member only)."""
        if not self.flat_view or not x.is_floating_point():
            return FlatView()
        return FlatView(dense=default_dense(x))

    def corruptions(self) -> dict[str, Corruption]:
        """Corruptions of this input's prepared batches for the robustness analysis, by name."""
        return {}

    def known_categories(self) -> dict[str, list[str]]:
        """Column -> the categories fit learned (a served page offers them in a select); none by default."""
        return {}

    def use_cache(self, folder: str | None, write: bool = True) -> None:
        """Where to cache computed features (processors that run a frozen backbone); ``write`` False: read the
        cache but store nothing new (a server, whose requests must not fill the disk). A runtime setting."""

    def use_device(self, device: str) -> None:
        """Where to run a frozen backbone while transforming ("cpu", "cuda", ...). A runtime setting; nothing by
        default."""

    def warm_up(self) -> None:
        """Load now what the first ``transform`` would load (a frozen backbone), so that a server's first request
        does not pay for it. Nothing by default."""

    def extraction(self) -> dict[str, float]:
        """What the last ``transform`` computed and read from a feature cache (counts, seconds); {} if nothing."""
        return {}

    # --- state --------------------------------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, read back from the attributes of the same names."""
        return {name: getattr(self, name) for name in inspect.signature(type(self)).parameters}

    def fitted_state(self) -> dict[str, Any]:
        """Fitted attributes (names ending in ``_``)."""
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": self.get_params(), "fitted": self.fitted_state()}

    @staticmethod
    def from_state(state: dict[str, Any]) -> "Processor":
        """Rebuild a fitted processor from ``state_dict()`` output."""
        cls = PROCESSORS.get(state["kind"])
        unknown = set(state["params"]) - set(inspect.signature(cls).parameters)
        if unknown:
            raise BundleError(f"processor {state['kind']!r}: unknown parameters {', '.join(sorted(unknown))}")
        processor = cls(**state["params"])
        for name, value in state["fitted"].items():
            setattr(processor, name, value)
        processor._setup()
        return processor

    def _setup(self) -> None:
        """Rebuild helpers that are not JSON (a tokenizer object, a filterbank) after ``fit`` or ``from_state``."""
