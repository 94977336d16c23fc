"""A set of values of one modality per cell, prepared by that modality's own processor element by element.

Stored rows are (N, K, P + 1): each row's first K elements (K = the largest training set, at most
``MAX_SET_ELEMENTS``), each element flattened to its P stored values followed by its presence (1, or 0 for padding
and unreadable elements), in the element processor's dtype; prepared batches likewise (B, K, P' + 1) in float32,
which ``nn.sets.SetEncoder`` unfolds: the same layout as frames' trailing padding mask (``core/frames.py``), so a
set input is one tensor everywhere (streaming, the sample cache, DDP, ONNX) and its row presence is the usual (N,).

Bad elements follow ``--on-bad-row`` with the element named: error stops, skip leaves the row out, mask drops the
element (the set keeps its readable elements; with none left the input is missing in that row).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..registry import PROCESSORS
from .processor import (EMPTY, TRUNCATED, UNREADABLE, Corruption, FlatView, Problem, Processor, Progress, Transformed,
                        with_progress)
from .sets import MAX_SET_ELEMENTS, set_elements


class SetProcessor(Processor):
    """Set cells of one column; ``element`` / ``element_settings``: the processor kind and settings of one element
    (what the column's modality would use for a single value); ``sep``: the cells' separator (None: JSON lists,
    folders, globs); ``max_elements``: at most this many elements per row are read; ``pooling``: how the network
    pools the elements' features (mean or attention; ``nn/sets.py``)."""

    kind, modality = "set", "set"

    def __init__(self, column: str, element: str, element_settings: dict[str, Any] | None = None,
                 sep: str | None = None, max_elements: int = MAX_SET_ELEMENTS, pooling: str = "mean"):
        self.column, self.element, self.element_settings = column, element, dict(element_settings or {})
        self.sep, self.max_elements, self.pooling = sep, max_elements, pooling
        self._element = PROCESSORS.get(element)(column, **self.element_settings)
        self.streamable = self._element.streamable
        self.ragged = self._element.ragged

    def _setup(self) -> None:
        self._element = Processor.from_state(self.element_state_)
        self.streamable, self.ragged = self._element.streamable, self._element.ragged

    @property
    def element_processor(self) -> Processor:
        """The processor of one element (fitted with the set)."""
        return self._element

    # --- cells -> elements --------------------------------------------------------------------------------------
    def _cells(self, values: pd.Series, root: Path, progress: Progress | None
               ) -> tuple[list[list[str]], list[Problem]]:
        cells, problems = [], []
        for i, value in with_progress(values, progress, f"listing the sets of {self.column!r}"):
            try:
                cells.append(set_elements(value, root, self.sep, self.max_elements))
            except ValueError as err:
                cells.append([])
                problems.append(Problem(i, self.column, UNREADABLE, str(err)))
        return cells, problems

    def fit(self, values: pd.Series, root: Path, progress: Progress | None = None) -> "SetProcessor":
        cells, _ = self._cells(values, root, None)
        self._element.fit(pd.Series([e for cell in cells for e in cell], dtype=object), root, progress)
        self.elements_ = max(1, min(self.max_elements, max(map(len, cells), default=1)))
        self.element_state_ = self._element.state_dict()
        sample = next((e for cell in cells for e in cell), "")
        stored = self._element.transform(pd.Series([sample], dtype=object), root).values
        self.stored_shape_ = list(stored.shape[1:])
        prepared = self._element.prepare_batch(stored, train=False)
        self.element_shape_ = [-1 if self.ragged and d == len(prepared.shape) - 2 else s
                               for d, s in enumerate(prepared.shape[1:])]
        self.element_ids_ = not prepared.is_floating_point()  # token ids: unfolded back to integers
        return self

    def transform(self, values: pd.Series, root: Path, progress: Progress | None = None) -> Transformed:
        cells, problems = self._cells(values, root, progress)
        k = self.elements_
        for i, cell in enumerate(cells):
            if len(cell) > k:
                problems.append(Problem(i, self.column, TRUNCATED, f"a set of {len(cell)} elements: the first {k} read"))
                cells[i] = cell[:k]
        rows = np.repeat(np.arange(len(cells)), [len(c) for c in cells])
        slots = np.concatenate([np.arange(len(c)) for c in cells]) if len(rows) else np.zeros(0, dtype=int)
        flat = pd.Series([e for cell in cells for e in cell], dtype=object)
        out = self._element.transform(flat, root, progress)
        width = math.prod(self.stored_shape_)
        stored = torch.zeros(len(cells), k, width + 1, dtype=out.values.dtype)
        if len(flat):
            elements = torch.cat([out.values.reshape(len(flat), width), out.present.to(out.values.dtype)[:, None]], 1)
            stored[torch.as_tensor(rows), torch.as_tensor(slots)] = elements
        for p in out.problems:  # an element's problem is its row's, naming the element
            problems.append(Problem(int(rows[p.row]), self.column, p.kind,
                                    f"element {slots[p.row] + 1} ({flat[p.row]}): {p.detail}"))
        said = {p.row for p in problems}
        problems += [Problem(i, self.column, EMPTY, "an empty set") for i, cell in enumerate(cells)
                     if not cell and i not in said]
        return Transformed(stored, stored[:, :, -1].bool().any(1), problems)

    # --- batches ------------------------------------------------------------------------------------------------
    def prepare_batch(self, x: Tensor, train: bool) -> Tensor:
        values, mask = unfold(x, self.stored_shape_, ids=False)  # stored elements (B * K, ...), presence (B, K)
        prepared = self._element.prepare_batch(values, train)  # (B * K, ...)
        return fold(prepared.reshape(x.shape[0], x.shape[1], -1).float(), mask.float())

    def encoder_kwargs(self) -> dict[str, Any]:
        return {**self._element.encoder_kwargs(), "set_elements": self.elements_,
                "element_shape": list(self.element_shape_), "element_ids": self.element_ids_,
                "set_pooling": self.pooling}

    def flat(self, x: Tensor) -> FlatView:
        """The elements' own flat views, mean-pooled over the present elements (n-gram ids: side by side)."""
        elements, mask = unfold(x, self.element_shape_, self.element_ids_)
        view = self._element.flat(elements)
        b, k = mask.shape
        weights = mask / mask.sum(1, keepdim=True).clamp(min=1)  # (B, K)

        def mean(t: Tensor | None) -> Tensor | None:
            return None if t is None else (t.reshape(b, k, -1).float() * weights.unsqueeze(-1)).sum(1)

        ids = None if view.ids is None else (view.ids.reshape(b, k, -1) * mask.unsqueeze(-1).long()).reshape(b, -1)
        return FlatView(dense=mean(view.dense), embedding=mean(view.embedding), ids=ids, vocab=view.vocab)

    def corruptions(self) -> dict[str, Corruption]:
        """The element's corruptions applied to every element, and ``element drop``: each present element is
        dropped with probability ``level`` (the first present one always kept)."""
        def lifted(fn: Corruption) -> Corruption:
            def corrupt(x: Tensor, level: float, generator: Any) -> Tensor:
                elements, mask = unfold(x, self.element_shape_, self.element_ids_)
                return fold(fn(elements, level, generator).reshape(x.shape[0], x.shape[1], -1).float(), mask)
            return corrupt

        return {**{name: lifted(fn) for name, fn in self._element.corruptions().items()}, "element drop": drop_elements}

    # --- runtime settings ---------------------------------------------------------------------------------------
    def use_cache(self, folder: str | None, write: bool = True) -> None:
        self._element.use_cache(folder, write)

    def use_device(self, device: str) -> None:
        self._element.use_device(device)

    def warm_up(self) -> None:
        self._element.warm_up()

    def extraction(self) -> dict[str, float]:
        return self._element.extraction()


def rows_holding(processor: Processor, values: int) -> int:
    """Rows of ``processor``'s input that hold about ``values`` values: ``values``, fewer for a set input (4
    elements a row: a quarter), so a batch or a streamed chunk of sets costs what one of single values does."""
    return max(1, values // processor.elements_) if isinstance(processor, SetProcessor) else values


def fold(elements: Tensor, mask: Tensor) -> Tensor:
    """Elements (B, K, P) and their presence (B, K) -> (B, K, P + 1), absent elements zeroed."""
    return torch.cat([elements * mask.unsqueeze(-1), mask.unsqueeze(-1)], dim=-1)


def unfold(x: Tensor, element_shape: list[int], ids: bool) -> tuple[Tensor, Tensor]:
    """A set batch (B, K, P + 1), stored or prepared -> elements (B * K, *element_shape) (integers for token ids) and
    their presence (B, K)."""
    elements = x[..., :-1].reshape(x.shape[0] * x.shape[1], *element_shape)
    return (elements.round().long() if ids else elements), x[..., -1]


def drop_elements(x: Tensor, level: float, generator: Any) -> Tensor:
    """Drop each present element of a prepared set batch (B, K, P + 1) with probability ``level``, keeping each
    row's first present element."""
    mask = x[..., -1]
    first = torch.zeros_like(mask).scatter_(1, mask.argmax(1, keepdim=True), 1.0) * mask
    keep = (torch.rand(mask.shape, generator=generator) >= level).float() * mask
    return fold(x[..., :-1], torch.maximum(keep, first))


def keep_elements(x: Tensor, count: int, generator: Any) -> Tensor:
    """Keep ``count`` of each row's present elements, drawn at random, of a prepared set batch (B, K, P + 1) (a
    row with fewer keeps them all)."""
    mask = x[..., -1]
    scores = torch.rand(mask.shape, generator=generator) + mask  # present elements first, in a random order
    rank = scores.argsort(1, descending=True).argsort(1)  # (B, K): each element's place in that order
    return fold(x[..., :-1], mask * (rank < count).float())


PROCESSORS.add(SetProcessor.kind, SetProcessor)
