"""``mmfuse.load``: any saved model, as the estimator that saved it."""

from __future__ import annotations

from pathlib import Path

from .base import BaseEstimator, is_retrieval_bundle
from .predictor import Predictor
from .retriever import Retriever


def load(path: str | Path, verbose: bool = True, cache_dir: str | Path | None = None) -> BaseEstimator:
    """Load a saved mmfuse model: a ``Predictor``, or a ``Retriever`` for a retrieval model."""
    cls = Retriever if is_retrieval_bundle(path) else Predictor
    return cls.load(path, verbose=verbose, cache_dir=cache_dir)
