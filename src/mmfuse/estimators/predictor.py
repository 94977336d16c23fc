"""``Predictor``: one fused model for classification or regression, with AutoGluon's method names.

    p = Predictor(label="category", preset="default").fit("train.csv", valid="valid.csv")
    p.evaluate("test.csv")            # {"accuracy": ..., "macro_f1": ..., ...}
    p.predict_proba(frame)            # one column per class
    p.save("model/"); Predictor.load("model/")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import torch

from ..config import ModelConfig, with_members
from ..core.processor import Corruption, Progress
from ..data.dataset import EncodedSplit, TableDataset, make_loader, row_accounting
from ..errors import ConfigError, DataError
from ..nn.model import MultiModalModel, build_model
from ..pipeline import InputPlan
from ..plots import plot_confusion
from ..portfolio import Portfolio, TimeBudget, member_outputs, prediction_path
from ..portfolio.prediction import ENSEMBLE
from .backends import onnx_backend
from .backbone_probe import cheaper_plan
from .base import BaseEstimator, TableLike
from .frames import leaderboard_frame, prediction_frame
from .importance import column_importance
from .labels import LabelColumn
from .weights import WeightedRows
from .splits import prediction_rows


class Predictor(WeightedRows, LabelColumn, BaseEstimator):
    """Train, evaluate, predict with, save and load one fused multimodal model.

    Args:
        label: the label column.
        task: ``auto`` (inferred from the label) or binary / multiclass / multilabel / regression.
        preset: a built-in preset name (``mmfuse.config.list_presets()``).
        config: a YAML file or a mapping, merged over the preset.
        column_types: column -> modality overrides (text, image, audio, sequence, numeric, categorical, ignore).
        encoders: column (or input kind: text/image/audio/sequence/tabular) -> encoder name.
        fusion: fusion method name (``mmfuse.list_fusions()``); modality_dropout: train-time input dropout.
        ignore: columns not to use (IDs that would leak the label).
        label_sep: separator of a multilabel column of delimited strings.
        threshold: multilabel decision threshold.
        eval_metric: what every choice on validation rows optimises (members' settings, ensemble, early stopping,
            leaderboard): one of the task's metrics (``mmfuse.tasks.metric_names``); None: the task's own.
        class_weight: "balanced" or class -> weight, times ``fit(sample_weight=)`` (``estimators.weights``).
        on_bad_row: what an unreadable value (missing/corrupt file, non-number) does: error, skip or mask.
        seed, batch_size, lr, max_epochs, threads: override the preset's training settings.
        time_limit: seconds the whole fit may take (reading, features, every member): members run cheapest first
            and those whose estimated cost no longer fits are skipped (said in the log and the leaderboard); the
            network trains for what is left.
        members, exclude_members: the portfolio's learners (``mmfuse.config.member_names()``; ``network`` is the
            fused network, which ``encoders`` and ``fusion`` configure): these only, or the preset's without these.
        refit: the chosen members learn again from the training + validation rows (None: unless ``valid`` is given).
        member: predict and evaluate with this fitted member alone (its own outputs), for comparison; None: the
            ensemble.
        set_sep: column -> the separator of its set cells (several values of one modality per cell, e.g. ``"|"``);
            JSON lists of strings, folders and globs are found without it. set_pooling: how the network pools a
            set's elements, mean or attention (the config's ``set_pooling``).
        finetune: train pretrained encoders' backbones too (default: frozen, features cached in ``cache_dir``,
            default ``~/.cache/mmfuse/features``).
        progress, verbose, devices, strategy, num_nodes, stream, sample_cache, workers, device: see
            ``BaseEstimator``.
    """

    default_preset, is_retrieval = "default", False
    graph_: Any = None  # the ONNX Runtime graph when loaded with backend="onnx" (else PyTorch runs the model)
    portfolio_: Portfolio  # the members (the network alone: ``lone``), weights and calibration

    def __init__(self, *, label: str, task: str = "auto", preset: str = "default",
                 config: str | Path | dict | None = None, column_types: dict[str, str] | None = None,
                 encoders: dict[str, str] | None = None, fusion: str | None = None,
                 modality_dropout: float | None = None, ignore: list[str] | None = None, label_sep: str | None = None,
                 threshold: float = 0.5, eval_metric: str | None = None, class_weight: str | dict | None = None,
                 on_bad_row: str = "mask",
                 seed: int | None = None, batch_size: int | None = None, lr: float | None = None,
                 max_epochs: int | None = None, time_limit: float | None = None, threads: int | None = None,
                 finetune: bool = False,
                 cache_dir: str | Path | None = None, progress: Progress | None = None, verbose: bool = True,
                 devices: int | None = None, strategy: str | None = None, num_nodes: int | None = None,
                 stream: str = "auto", sample_cache: bool = True, workers: int = 0, device: str = "auto",
                 members: list[str] | None = None, exclude_members: list[str] | None = None,
                 refit: bool | None = None, member: str | None = None, set_sep: dict[str, str] | None = None, set_pooling: str | None = None):
        self._keep_settings(locals())

    # --- what differs from the base -----------------------------------------------------------------------------
    def _resolve_config(self) -> ModelConfig:
        return with_members(super()._resolve_config(), self.members, self.exclude_members, self.refit)

    def _extra_overrides(self) -> dict[str, Any]:
        given = {"fusion": None if self.fusion is None else {"name": self.fusion},
                 "modality_dropout": self.modality_dropout, "set_pooling": self.set_pooling}
        return {k: v for k, v in given.items() if v is not None}

    def _build_model(self) -> MultiModalModel:
        cfg = self.config_
        return build_model(self._encoder_inputs(), self.task_.out_dim, cfg.fusion.name, cfg.fusion.params,
                           cfg.head.model_dump(), cfg.modality_dropout)

    def _score(self, dataset: TableDataset) -> dict[str, float]:
        return self.task_.metrics(dataset.target, self.predict_outputs(dataset.split), dataset.weights())

    def _plan_inputs(self, splits: Any, budget: TimeBudget) -> dict[str, InputPlan]:
        """Frozen backbones give way to their modality's fast encoder when their features would take more than a
        time limit's share, or add nothing on a large table's sample (``backbone_probe.cheaper_plan``)."""
        return cheaper_plan(self, splits, budget, lambda: super(Predictor, self)._plan_inputs(splits, budget))

    # --- the portfolio ------------------------------------------------------------------------------------------
    def _member_names(self) -> list[str]:
        return self.config_.portfolio.members

    @classmethod
    def load(cls, path: str | Path, verbose: bool = True, cache_dir: str | Path | None = None,
             backend: str = "torch", onnx_path: str | Path | None = None, plugins: Iterable[str] = ()) -> "Predictor":
        """A saved model; ``backend="onnx"`` runs the network exported by ``mmfuse export`` (``onnx_path``,
        default MODEL/model.onnx) with onnxruntime, the processors staying as saved. ``plugins``: as in ``load``."""
        predictor = super().load(path, verbose=verbose, cache_dir=cache_dir, plugins=plugins)
        if backend == "onnx":
            predictor.graph_ = onnx_backend(predictor, Path(path), onnx_path)
        elif backend != "torch":
            raise ConfigError(f"backend must be 'torch' or 'onnx', not {backend!r}")
        return predictor

    def describe(self) -> dict[str, Any]:
        about = super().describe()
        ensemble = {} if self.portfolio_.lone else {"members": self.portfolio_.weights}  # member -> weight
        return {**about, "classes": self.task_.classes, **ensemble,
                "fusion": self.config_.fusion.name, "head": self.config_.head.hidden_dims}

    # --- inference ----------------------------------------------------------------------------------------------
    @property
    def inputs_(self) -> list[str]:
        """The model's input names, sorted (column names, and ``tabular`` for numeric/categorical columns)."""
        self._check_fitted()
        return sorted(self.pipeline_.processors)

    def prepare(self, data: TableLike, split: str = "predict", labelled: bool = False) -> tuple[pd.DataFrame, EncodedSplit]:
        """Read and transform a table as prediction does: (the table's rows, the transformed split). Columns of the
        model missing from the table are treated as missing in every row (with a warning)."""
        self._check_fitted()
        frame, root, missing = prediction_rows(self, data, split, labelled)
        return frame, self._encode(frame, root, split, missing)

    def predict_outputs(self, split: EncodedSplit, batch_size: int | None = None, absent: frozenset[str] = frozenset(),
                        transform: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
                        member: str | None = None) -> np.ndarray:
        """Task outputs (N, K) for every row of a prepared split: probabilities, or values for regression; of the
        whole portfolio (weighted, calibrated), or of one ``member`` (its own outputs, as in the leaderboard).

        ``batch_size``: rows per batch (default: 256, fewer with a set input, ``InputPipeline.batch_rows``);
        ``absent``: inputs to treat as missing in every row; ``transform``: edits each batch's model inputs (the
        robustness analysis corrupts them with it).
        """
        self._check_fitted()
        member = member or self.member
        outputs = self._member_outputs(split, self._members_needed(member), batch_size, absent, transform)
        return outputs[member] if member is not None else self._ensemble(outputs)

    def _ensemble(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The model's outputs from its members' (an exported portfolio graph's own ``"ensemble"`` when it ran)."""
        return outputs[ENSEMBLE] if ENSEMBLE in outputs else self.portfolio_.outputs(outputs, self.task_)

    def _member_outputs(self, split: EncodedSplit, names: list[str], batch_size: int | None = None,
                        absent: frozenset[str] = frozenset(), transform: Callable | None = None) -> dict[str, np.ndarray]:
        """Member name -> its outputs (N, K) for the rows of a prepared split, for the members named (and
        ``"ensemble"`` where an exported portfolio graph gives it): by the prediction path this model was loaded
        with (``portfolio.prediction``)."""
        path = prediction_path(self.portfolio_, self.task_, self._device(), self.config_.train.precision, self.graph_)
        loader = make_loader(self.pipeline_.dataset(split), batch_size or self.pipeline_.batch_rows(), shuffle=False,
                             pin_memory=self._device() == "cuda")
        return member_outputs(path, loader, self.pipeline_.processors, names, absent, transform)

    def _members_needed(self, member: str | None) -> list[str]:
        """The members whose outputs a prediction needs: the ensemble's, or one member's."""
        return self.portfolio_.needed() if member is None else self.portfolio_.one(member)

    def members_(self) -> list[str]:
        """The fitted members' names, in fit order."""
        self._check_fitted()
        return self.portfolio_.fitted()

    def leaderboard(self, test: TableLike | None = None) -> pd.DataFrame:
        """One row per member tried, then the ensemble: validation score of the primary metric, ensemble weight,
        fit seconds, prediction milliseconds per row, and the status (fitted, or skipped and why); with ``test`` (a
        labelled table), each member's and the ensemble's score on it too."""
        self._check_fitted()
        return leaderboard_frame(self, test)

    def importance(self, data: TableLike, method: str = "permute", repeats: int = 5, seed: int = 0) -> pd.DataFrame:
        """Each input column's importance on a labelled table: the drop in the primary metric when its values are
        shuffled between rows (``method="mask"``: when it is removed), over the whole model; one row per column, most
        important first: ``importance`` (mean drop over ``repeats``), ``stddev``, ``n``, ``modality``, ``input``."""
        return column_importance(self, data, method, repeats, seed, self._progress_callback()).frame()

    def corruptions(self) -> dict[str, dict[str, Corruption]]:
        """Input name -> corruption name -> function(prepared batch, level, generator), for robustness curves."""
        self._check_fitted()
        return self.pipeline_.corruptions()

    def predict_frame(self, data: TableLike, explain: bool = False, keep: list[str] | None = None) -> pd.DataFrame:
        """``row`` (the row's 0-based position in the table), ignored ID columns and the columns named in ``keep``
        (carried through as they are), ``inputs_used`` (the inputs present
        in that row, e.g. ``audio+image``), ``prediction`` and ``proba_<class>`` columns; indexed like the input (a
        DataFrame's own index; a file's rows 0..n-1), so ``frame.assign(pred=...)`` lines up on a filtered frame.
        Rows skipped as unreadable (``on_bad_row="skip"``) are absent.

        ``explain``: also what each row's prediction owes each input and each number or category column
        (``estimators/contributions.py``): ``explains`` (the value they move: the predicted class's probability, or
        the predicted value), ``contribution_<input>`` (that value minus the value without the input),
        ``contribution_<column>`` for the columns of a shared input (the same with that column empty) and, for at
        most 4 inputs, ``shapley_<input>``.
        """
        return prediction_frame(self, data, explain, keep)

    def predict(self, data: TableLike) -> pd.Series:
        """Predicted class (multilabel: the chosen labels joined by ``label_sep``) or value, indexed like the input."""
        return self.predict_frame(data)["prediction"].rename(self.label)

    def predict_proba(self, data: TableLike) -> pd.DataFrame:
        """Class probabilities, one column per class, indexed like the input (not for regression)."""
        self._check_fitted()
        if not self.task_.has_probabilities:
            raise DataError("predict_proba is for classification; this model does regression: use predict")
        out = self.predict_frame(data)
        proba = out[[c for c in out.columns if c.startswith("proba_")]]
        return proba.set_axis([c[len("proba_"):] for c in proba.columns], axis=1)

    def evaluate(self, data: TableLike, confusion_plot: str | Path | None = None) -> dict[str, float]:
        """Metrics on a labelled table, and the row accounting: ``rows`` in the table, ``rows_scored``,
        ``left_out_no_label`` and ``left_out_unreadable`` (skipped by ``on_bad_row="skip"``).

        ``confusion_plot``: also write a confusion-matrix PNG there (binary / multiclass).
        """
        frame, split = self.prepare(data, "evaluate", labelled=True)
        target = self.targets(frame, split)
        outputs = self.predict_outputs(split)
        if confusion_plot is not None:
            if not self.task_.one_class_per_row:
                raise DataError(f"a confusion matrix needs a binary or multiclass model, not {self.task_.name}")
            plot_confusion(target.numpy(), outputs.argmax(1), self.task_.classes, confusion_plot)
        return {**self.task_.metrics(target, outputs), **row_accounting(split)}
