"""``knn``: the k nearest training rows by cosine similarity of the frozen embeddings (each embedding input
standardised on the training rows; side by side; each row scaled to unit length), ``k`` picked on validation from
``grid``. Its logits are the neighbours' answer: the log of each class's share (smoothed by half a neighbour), the
log-odds of each label's or of the second class's share, or the mean standardised value. A row without an input,
or an input absent in every row, reads that input's training mean (zeros once standardised). At most ``max_rows``
training rows are kept (a seeded sample): the fitted member holds them. Opt-in (``--members ...,knn``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..registry import MEMBERS
from ..tasks.base import Task
from .budget import past
from .features import fit_scale, scale
from .flat import FlatInputs
from .learner import Learner
from .rates import NEIGHBOURS
from .scoring import selection_key

CHUNK = 1024  # rows whose similarities to every kept training row are computed at once


@MEMBERS.register("knn", cost=2)
class NearestNeighbours(Learner):
    name = "knn"

    def __init__(self, seed: int = 0, threads: int = 1, k: int = 10, grid: tuple[int, ...] | None = (5, 10, 20, 40),
                 max_rows: int = 20_000):
        super().__init__(seed, threads)
        self.k, self.grid, self.max_rows = k, None if grid is None else list(grid), max_rows

    def missing_views(self, flat: FlatInputs) -> str | None:
        return None if any(v.embedding is not None for v in flat.views.values()) else "no frozen embeddings"

    def estimate_seconds(self, flat: FlatInputs, task: Task) -> float:
        """Every validation row against every kept training row, per embedding width (~1 ns a product)."""
        width = sum(v.embedding.shape[1] for v in flat.views.values() if v.embedding is not None)
        return NEIGHBOURS * min(len(flat), self.max_rows) * len(flat) * 0.25 * width + 0.2

    def learn(self, train: FlatInputs, target: Tensor, task: Task, valid: FlatInputs | None = None,
              valid_target: Tensor | None = None, upstream: dict | None = None,
              deadline: float | None = None) -> "NearestNeighbours":
        self.fitted["inputs"] = sorted(n for n, v in train.views.items() if v.embedding is not None)
        for name in self.fitted["inputs"]:
            present = train.present[name]
            rows = train.views[name].embedding[present] if present.any() else train.views[name].embedding
            self.arrays[f"mean.{name}"], self.arrays[f"std.{name}"] = fit_scale(rows)
        keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.seed))[: self.max_rows]
        keep = keep.sort().values
        self.arrays["rows"] = self._design(train.take(keep))
        self.arrays["targets"] = target[keep].float().reshape(len(keep), -1).numpy()
        self.fitted["output_kind"], self.fitted["width"] = task.output_kind, task.out_dim
        self.fitted["k"] = self.k
        if valid is None or not self.grid:
            return self
        best = None
        for k in sorted(self.grid):
            if best is not None and past(deadline):
                break  # out of time: the best k so far
            self.fitted["k"] = k
            outputs = task.outputs(torch.from_numpy(self.logits(valid)))
            key = selection_key(task, valid_target, outputs, valid.weights())
            if best is None or key > best[0]:
                best = (key, k)
        self.fitted["k"] = best[1]
        return self

    def refit_settings(self) -> dict[str, Any]:
        return {**self.get_params(), "k": self.fitted["k"], "grid": None}

    def _design(self, flat: FlatInputs, absent: frozenset[str] = frozenset()) -> np.ndarray:
        """(N, E) unit rows of the standardised embeddings (an absent or missing input: zeros)."""
        blocks = []
        for name in self.fitted["inputs"]:
            x = scale(flat.views[name].embedding, self.arrays[f"mean.{name}"], self.arrays[f"std.{name}"])
            keep = np.zeros(len(x), dtype=bool) if name in absent else flat.present[name].numpy()
            blocks.append(np.where(keep[:, None], x, 0.0))
        rows = np.concatenate(blocks, axis=1).astype(np.float32)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)

    def logits(self, flat: FlatInputs, absent: frozenset[str] = frozenset(),
               upstream: dict[str, np.ndarray] | None = None) -> np.ndarray:
        query, rows, targets = self._design(flat, absent), self.arrays["rows"], self.arrays["targets"]
        k = min(self.fitted["k"], len(rows))
        means = []
        for start in range(0, len(query), CHUNK):
            similarity = torch.from_numpy(query[start:start + CHUNK] @ rows.T)
            nearest = similarity.topk(k, dim=1).indices.numpy()  # (B, k)
            means.append(self._answer(targets[nearest], k))
        return np.concatenate(means).astype(np.float32) if means else np.zeros((0, 1), dtype=np.float32)

    def _answer(self, neighbours: np.ndarray, k: int) -> np.ndarray:
        """(B, k, T) the neighbours' targets -> (B, out_dim) logits for the task's output kind."""
        kind = self.fitted["output_kind"]
        if kind == "value":
            return neighbours.mean(1)
        if kind == "softmax":
            classes = self.fitted["width"]
            counts = np.stack([(neighbours[..., 0] == c).sum(1) for c in range(classes)], axis=1)
            return np.log((counts + 0.5) / (k + 0.5 * classes))
        share = (neighbours.sum(1) + 0.5) / (k + 1.0)  # one logit ("logit") or one per label ("sigmoids")
        return np.log(share) - np.log1p(-share)
