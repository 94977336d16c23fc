"""``mmfuse.load``: any saved model, as the estimator that saved it."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..io.bundle import read_bundle_config
from ..tasks import is_labelled
from .base import BaseEstimator
from .predictor import Predictor
from .retriever import Retriever


def load(path: str | Path, verbose: bool = True, cache_dir: str | Path | None = None,
         plugins: Iterable[str] = ()) -> BaseEstimator:
    """Load a saved mmfuse model: a ``Predictor``, or a ``Retriever`` for a retrieval model. ``plugins``: plugin
    modules the model may import (those it names that are not installed entry points)."""
    cls = Retriever if is_retrieval_bundle(path) else Predictor
    return cls.load(path, verbose=verbose, cache_dir=cache_dir, plugins=plugins)


def is_retrieval_bundle(path: str | Path) -> bool:
    """Whether a saved model folder holds a retrieval model (its config's task), without reading the weights."""
    return not is_labelled(read_bundle_config(path).get("task", {}).get("name"))
