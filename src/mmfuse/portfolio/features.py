"""Design-matrix blocks the members build from flat views: TF-IDF of id bags, one-hot categories, standardised
numbers. Each block belongs to one input, so a member can treat an absent input block by block."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from torch import Tensor


def id_bag(ids: Tensor, vocab: int) -> sp.csr_matrix:
    """(N, L) ids (0 = padding) -> (N, vocab) counts, as float32 CSR with sorted indices: each row's ids sorted in
    place, a repeated id counted once per run (no COO round trip: scipy's index sort took a quarter of an n-gram
    member's fit on long texts)."""
    values = ids.numpy().astype(np.int64, copy=True)
    values[values >= vocab] = 0
    values.sort(axis=1)
    kept = values > 0
    cols = values[kept]                                            # row by row, ascending within a row
    rows = np.repeat(np.arange(len(values)), kept.sum(1))
    starts = np.flatnonzero(np.r_[True, (cols[1:] != cols[:-1]) | (rows[1:] != rows[:-1])]) if len(cols) else cols
    counts = np.diff(np.r_[starts, len(cols)]).astype(np.float32)
    indptr = np.r_[0, np.cumsum(np.bincount(rows[starts], minlength=len(values)))]
    bag = sp.csr_matrix((counts, cols[starts], indptr), shape=(len(values), vocab))
    bag.has_sorted_indices = True
    return bag


def fit_idf(ids: Tensor, vocab: int, weight: np.ndarray | None = None) -> np.ndarray:
    """Smoothed inverse document frequency of each id over the training rows (scikit-learn's ``smooth_idf``), each
    row counted ``weight`` (N,) times (None: once)."""
    bag = id_bag(ids, vocab)
    if weight is None:
        return (np.log((1 + bag.shape[0]) / (1 + np.bincount(bag.indices, minlength=vocab))) + 1).astype(np.float32)
    rows = np.repeat(np.arange(bag.shape[0]), np.diff(bag.indptr))
    df = np.bincount(bag.indices, weights=weight[rows], minlength=vocab)
    return (np.log((1 + weight.sum()) / (1 + df)) + 1).astype(np.float32)


def tfidf(ids: Tensor, idf: np.ndarray) -> sp.csr_matrix:
    """(N, L) ids -> (N, vocab) sublinear TF-IDF rows, L2-normalised (what TfidfVectorizer(sublinear_tf) gives), in
    float64 (so an exported graph computes the same values to the last float32 bit)."""
    bag = id_bag(ids, len(idf)).astype(np.float64)
    bag.data = (1 + np.log(bag.data)) * idf[bag.indices].astype(np.float64)
    norms = np.sqrt(np.asarray(bag.multiply(bag).sum(1)).ravel())
    return sp.csr_matrix(sp.diags(1 / np.maximum(norms, 1e-12)) @ bag)


def one_hot(categories: Tensor, cardinalities: tuple[int, ...]) -> sp.csr_matrix:
    """(N, C) category ids -> (N, sum of cardinalities) indicators (id 0, missing, has its own column)."""
    offsets = np.concatenate([[0], np.cumsum(cardinalities)[:-1]]).astype(np.int64)
    n = categories.shape[0]
    cols = (categories.numpy().astype(np.int64).clip(0, np.array(cardinalities) - 1) + offsets).ravel()
    rows = np.repeat(np.arange(n), categories.shape[1])
    return sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(n, int(sum(cardinalities))))


def fit_scale(x: Tensor, weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation (at least 1e-3) of training rows (N, D), each row counted ``weight``
    (N,) times (None: once)."""
    values = x.double().numpy()
    if weight is None:
        return values.mean(0).astype(np.float32), np.maximum(values.std(0), 1e-3).astype(np.float32)
    mean = np.average(values, axis=0, weights=weight)
    std = np.sqrt(np.average((values - mean) ** 2, axis=0, weights=weight))
    return mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32)


def scale(x: Tensor, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std in float64 (N, D)."""
    return (x.double().numpy() - mean.astype(np.float64)) / std.astype(np.float64)
