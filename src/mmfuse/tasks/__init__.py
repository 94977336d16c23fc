"""Tasks: label handling, loss, outputs and metrics. Importing this package registers the built-in ones.

``infer_task`` picks a label task from the label column (``explain_task`` says why; ``--task`` overrides it);
retrieval is chosen by the ``Retriever`` estimator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError
from ..registry import TASKS
from . import classification, regression, retrieval  # noqa: F401  (registers the tasks)
from .base import Task

MAX_INTEGER_CLASSES = 20  # an integer label with more distinct values is read as a number


def infer_task(labels: pd.Series, label_sep: str | None = None) -> str:
    """Guess the task from the label column's values (missing labels already removed)."""
    return explain_task(labels, label_sep)[0]


def explain_task(labels: pd.Series, label_sep: str | None = None) -> tuple[str, str]:
    """The task ``infer_task`` picks and why, in words that say how to pick another (``--task``)."""
    if label_sep is not None or labels.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
        return "multilabel", "its cells are lists of labels"
    if not pd.api.types.is_numeric_dtype(labels) and labels.astype(str).str.strip().str.startswith("[").all():
        return "multilabel", "its cells are JSON lists of labels"
    n_unique = labels.nunique()
    if n_unique < 2:
        raise DataError(f"label column {labels.name!r} has only one distinct value; nothing to learn")
    if n_unique == 2:
        return "binary", "2 distinct values"
    if pd.api.types.is_numeric_dtype(labels):
        if not np.allclose(labels, np.round(labels)):
            return "regression", f"{n_unique} distinct numbers, not all integers"
        if n_unique > MAX_INTEGER_CLASSES:
            return "regression", (f"{n_unique} distinct integers, more than {MAX_INTEGER_CLASSES}; --task multiclass "
                                  "reads them as classes")
        return "multiclass", (f"{n_unique} distinct integers, at most {MAX_INTEGER_CLASSES}; --task regression reads "
                              "them as numbers")
    return "multiclass", f"{n_unique} distinct values"


def create_task(name: str, label: str, label_sep: str | None = None, threshold: float = 0.5,
                metric: str | None = None) -> Task:
    """A label task by name (binary, multiclass, multilabel, regression), optimising ``metric`` (None: its own)."""
    if name not in TASKS.names(labelled=True):
        raise DataError(f"unknown task {name!r}; choose from: auto, {', '.join(TASKS.names(labelled=True))}")
    return TASKS.get(name)(label, label_sep=label_sep, threshold=threshold, metric=metric)


def metric_names(name: str) -> tuple[str, ...]:
    """The metrics a labelled task's ``eval_metric`` may name, its own first."""
    if name not in TASKS.names(labelled=True):
        raise DataError(f"unknown task {name!r}; choose from: {', '.join(TASKS.names(labelled=True))}")
    cls = TASKS.get(name)
    return (cls.primary_metric, *(m for m in cls.metric_names if m != cls.primary_metric))


def is_labelled(name: str | None) -> bool:
    """Whether a task name (a saved model's, or ``--task``'s; ``auto`` included) learns a label column (a
    ``Predictor``), rather than pairs (a ``Retriever``); an unknown name counts as labelled, for its own error."""
    return name not in TASKS or bool(TASKS.meta(name).get("labelled"))


def task_from_state(state: dict) -> Task:
    """A task rebuilt from its ``state_dict()`` (as saved in a bundle's config.json)."""
    return TASKS.get(state["name"]).from_state(state)
