"""A fit as the command line runs it, below the command line: the estimator a task takes, what ``--out`` may replace,
and fit -> save -> clean up, with the run's state kept in ``OUT.partial/`` beside ``--out`` until the model is saved.

    estimator = make_estimator("auto", {"label": "y", "preset": "fast"})
    fit_and_save(estimator, "train.csv", "valid.csv", "model/")
"""

from __future__ import annotations

import inspect
import os
from contextlib import nullcontext, suppress
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io.bundle import is_bundle_folder
from ..io.checkpoint import remove_checkpoints
from ..io.locks import folder_lock
from ..tasks import is_labelled
from .base import BaseEstimator, TableLike
from .predictor import Predictor
from .retriever import Retriever



def make_estimator(task: str, settings: dict[str, Any]) -> BaseEstimator:
    """A ``Retriever`` for ``task="retrieval"``, else a ``Predictor``, from settings named as the estimators' own
    (those that are None are left to the estimator's defaults; each estimator takes the settings that apply)."""
    given = {k: v for k, v in settings.items() if v is not None}
    if not is_labelled(task):
        if not given.get("query") or not given.get("target") or given.get("label"):
            raise ConfigError("--task retrieval needs --query and --target (the two columns of each pair), "
                              "and no --label")
        return Retriever(**{k: v for k, v in given.items() if k not in only(Predictor, Retriever)})
    if not given.get("label") or given.get("query") or given.get("target"):
        raise ConfigError("--label is required (--query/--target are for --task retrieval)")
    return Predictor(task=task, **{k: v for k, v in given.items() if k not in only(Retriever, Predictor)})


def only(estimator: type[BaseEstimator], other: type[BaseEstimator]) -> set[str]:
    """The settings ``estimator``'s constructor takes and ``other``'s does not (the CLI gathers both's)."""
    def settings(cls: type[BaseEstimator]) -> set[str]:
        return set(inspect.signature(cls.__init__).parameters)

    return settings(estimator) - settings(other)


def partial_folder(out: str | Path) -> Path:
    """Where a fit that saves to ``out`` keeps its state until the model is saved: ``OUT.partial/`` beside it."""
    return Path(out).parent / f"{Path(out).name}.partial"


def out_problem(out: str | Path, overwrite: bool) -> str | None:
    """Why a fit must not start when it would save to ``out`` (a folder that is not a model; a model, unless
    ``overwrite``), or None."""
    folder = Path(out)
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return None
    if not is_bundle_folder(folder):
        return f"--out {out} exists and is not an mmfuse model folder: choose another folder"
    return None if overwrite else f"--out {out} already holds a model: pass --overwrite to replace it"


def fit_and_save(estimator: BaseEstimator, train: TableLike, valid: TableLike | None, out: str | Path,
                 resume: bool = False, restart: bool = False, checkpoint_every: float = 30.0,
                 fit_args: dict[str, Any] | None = None) -> Path | None:
    """Fit (with ``fit_args``, e.g. ``sample_weight``) with the run's state saved in ``OUT.partial/`` (resumed from
    it with ``resume``, discarded with ``restart``), save the model to ``out``, then remove that state. The fit holds a lock on ``OUT.partial/`` from
    start to save: a second fit into the same ``out`` meanwhile is refused at once. Returns the model folder, or None in a DDP
    process other than rank 0 (which saves)."""
    partial = partial_folder(out)
    child = os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("RANK", "0") != "0"  # a DDP rank but 0
    with nullcontext(True) if child else folder_lock(partial) as mine:
        if not mine:
            raise ConfigError(f"another mmfuse fit is writing to {out} (its state is in {partial}/): wait for it to "
                              "finish, or save to another folder")
        try:
            estimator.fit(train, valid=valid, checkpoint_dir=partial, resume=resume, restart=restart,
                          checkpoint_every=checkpoint_every, **(fit_args or {}))
        finally:
            if not child:  # rank 0 alone: another rank's cleanup would race the checkpoints rank 0 writes
                with suppress(OSError):
                    partial.rmdir()  # only when empty (nothing to resume from): no folder left
        if estimator.global_rank_ != 0:
            return None
        path = estimator.save(out)
        remove_checkpoints(partial)
    return path
