"""Retrieval: CLIP's symmetric InfoNCE loss over a batch of matching pairs, and Recall@K / rank metrics."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..registry import TASKS

RECALL_AT = (1, 5, 10)
DIRECTIONS = ("q2t", "t2q")  # query -> target (find the target for a query), target -> query


def info_nce(query: Tensor, target: Tensor) -> Tensor:
    """Symmetric InfoNCE over a batch of matching pairs: query, target (B, D), already scaled so that
    ``query @ target.T`` are the logits (temperature-scaled cosine similarities); row i matches column i."""
    logits = query @ target.T  # (B, B)
    labels = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def match_ranks(similarity: np.ndarray) -> np.ndarray:
    """Rank (1 = first) of each row's match (the diagonal) among that row's scores; ties count against the match."""
    diagonal = np.diagonal(similarity)[:, None]
    return (similarity >= diagonal).sum(1)


def retrieval_metrics(similarity: np.ndarray) -> dict[str, float]:
    """Recall@1/5/10, median rank and mean reciprocal rank in both directions from an (N, N) similarity matrix whose
    row i (query i) matches column i (target i); ``mean_recall`` averages the six recalls (the early-stopping score)."""
    metrics: dict[str, float] = {}
    for direction, sim in zip(DIRECTIONS, (similarity, similarity.T)):
        ranks = match_ranks(sim)
        for k in RECALL_AT:
            metrics[f"{direction}_r@{k}"] = float((ranks <= k).mean())
        metrics[f"{direction}_median_rank"] = float(np.median(ranks))
        metrics[f"{direction}_mrr"] = float((1.0 / ranks).mean())
    metrics["mean_recall"] = float(np.mean([metrics[f"{d}_r@{k}"] for d in DIRECTIONS for k in RECALL_AT]))
    return metrics


@TASKS.register("retrieval")
class RetrievalTask:
    """Matching pairs: the model's ``logits`` are the stacked, temperature-scaled embeddings (B, 2, D) of each
    pair's query and target; the loss is InfoNCE, the metrics recall and ranks."""

    name, primary_metric, maximize, output_kind = "retrieval", "mean_recall", True, "embedding"

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return info_nce(logits[:, 0].float(), logits[:, 1].float())

    def outputs(self, logits: Tensor) -> np.ndarray:
        return logits.float().numpy()

    def metrics(self, target: Tensor, outputs: np.ndarray, weight: np.ndarray | None = None,
                names: Iterable[str] | None = None) -> dict[str, float]:
        """Recall@k of the queries' targets (every pair counted once: no row weights)."""
        return retrieval_metrics(outputs[:, 0] @ outputs[:, 1].T)

    def state_dict(self) -> dict[str, str]:
        return {"name": self.name}

    @classmethod
    def from_state(cls, state: dict[str, str]) -> "RetrievalTask":
        return cls()
