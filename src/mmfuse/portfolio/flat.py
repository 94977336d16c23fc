"""A split's flat views: what every input's processor gives the linear and tree members (``core.processor.FlatView``),
for all rows, with each input's presence mask.

Views are computed from prepared batches (the network's inputs, corruptions included), so the members and the network
always read the same rows the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Iterable

import numpy as np
import torch
from torch import Tensor

from ..core.processor import FlatView, Processor


@dataclass
class FlatInputs:
    """Input name -> its ``FlatView`` over N rows, and its presence (N,) bool; for one batch of prediction also the
    prepared inputs themselves (``prepared``: what the network reads)."""

    views: dict[str, FlatView]
    present: dict[str, Tensor]
    prepared: dict[str, Tensor] | None = None
    weight: Tensor | None = None  # (N,) float: each row's weight in the members' losses and scores (None: 1)

    def __len__(self) -> int:
        return len(next(iter(self.present.values()))) if self.present else 0

    def take(self, index: Tensor) -> "FlatInputs":
        """The rows at positions ``index`` (N',) long."""
        views = {n: replace(v, **{f: getattr(v, f)[index] for f in TENSORS if getattr(v, f) is not None})
                 for n, v in self.views.items()}
        return FlatInputs(views, {n: m[index] for n, m in self.present.items()},
                          weight=None if self.weight is None else self.weight[index])

    def select(self, names: Iterable[str]) -> "FlatInputs":
        """Only the inputs ``names``."""
        return FlatInputs({n: self.views[n] for n in names}, {n: self.present[n] for n in names}, weight=self.weight)

    def weights(self) -> np.ndarray | None:
        """``weight`` as numpy float64 (None: every row 1), as scikit-learn and LightGBM take it."""
        return None if self.weight is None else self.weight.double().numpy()


TENSORS = tuple(f.name for f in fields(FlatView) if f.name in ("dense", "embedding", "ids", "categories"))


def flat_batch(processors: dict[str, Processor], inputs: dict[str, Tensor], present: dict[str, Tensor]) -> FlatInputs:
    """The flat views of one prepared batch (inputs as the network reads them)."""
    return FlatInputs({n: processors[n].flat(x) for n, x in inputs.items()}, dict(present))


def concat(parts: Iterable[FlatInputs]) -> FlatInputs:
    """Batches' views stacked row-wise; id rows padded with 0 to the widest batch."""
    parts = list(parts)
    first = parts[0]
    views = {}
    for name, view in first.views.items():
        stacked = {}
        for f in TENSORS:
            pieces = [getattr(p.views[name], f) for p in parts]
            if pieces[0] is None:
                continue
            if f == "ids":
                width = max(p.shape[1] for p in pieces)
                pieces = [torch.nn.functional.pad(p, (0, width - p.shape[1])) for p in pieces]
            stacked[f] = torch.cat(pieces)
        views[name] = replace(view, **stacked)
    weights = [p.weight for p in parts]
    weight = None if all(w is None for w in weights) else torch.cat(
        [torch.ones(len(p)) if w is None else w.float() for p, w in zip(parts, weights)])
    return FlatInputs(views, {n: torch.cat([p.present[n] for p in parts]) for n in first.present}, weight=weight)


def named_views(flat: FlatInputs) -> dict[str, Tensor]:
    """``<input>__<field>`` -> tensor for every view present: the flat inputs of an exported portfolio graph."""
    return {f"{n}__{f}": getattr(v, f) for n, v in flat.views.items() for f in TENSORS if getattr(v, f) is not None}
