"""Tasks: label handling, loss, outputs and metrics. Importing this package registers the built-in ones.

``infer_task`` picks a label task from the label column (overridable with ``--task``); retrieval is chosen by the
``Retriever`` estimator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError
from ..registry import TASKS
from . import classification, regression, retrieval  # noqa: F401  (registers the tasks)
from .base import Task


def infer_task(labels: pd.Series, label_sep: str | None = None) -> str:
    """Guess the task from the label column's values (missing labels already removed)."""
    if label_sep is not None or labels.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
        return "multilabel"
    if not pd.api.types.is_numeric_dtype(labels) and labels.astype(str).str.strip().str.startswith("[").all():
        return "multilabel"
    n_unique = labels.nunique()
    if n_unique < 2:
        raise DataError(f"label column {labels.name!r} has only one distinct value; nothing to learn")
    if n_unique == 2:
        return "binary"
    if pd.api.types.is_numeric_dtype(labels):
        integer = np.allclose(labels, np.round(labels))
        return "multiclass" if integer and n_unique <= 20 else "regression"
    return "multiclass"


def create_task(name: str, label: str, label_sep: str | None = None, threshold: float = 0.5) -> Task:
    """A label task by name (binary, multiclass, multilabel, regression)."""
    if name not in TASKS.names(labelled=True):
        raise DataError(f"unknown task {name!r}; choose from: auto, {', '.join(TASKS.names(labelled=True))}")
    return TASKS.get(name)(label, label_sep=label_sep, threshold=threshold)


def task_from_state(state: dict) -> Task:
    """A task rebuilt from its ``state_dict()`` (as saved in a bundle's config.json)."""
    return TASKS.get(state["name"]).from_state(state)
