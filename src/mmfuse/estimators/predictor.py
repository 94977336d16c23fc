"""``Predictor``: one fused model for classification or regression, with AutoGluon's method names.

    p = Predictor(label="category", preset="default").fit("train.csv", valid="valid.csv")
    p.evaluate("test.csv")            # {"accuracy": ..., "macro_f1": ..., ...}
    p.predict_proba(frame)            # one column per class
    p.save("model/"); Predictor.load("model/")
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from ..core.columns import ColumnInfo
from ..core.devices import autocast_dtype
from ..core.processor import Corruption, Progress
from ..data.dataset import EncodedSplit, TableDataset, make_loader, row_accounting
from ..data.detect import detect_columns
from ..data.table import Table, read_table
from ..errors import ConfigError, DataError
from ..nn.model import MultiModalModel, build_model
from ..plots import plot_confusion
from ..tasks import create_task, infer_task
from .base import BaseEstimator, TableLike


class Predictor(BaseEstimator):
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
        on_bad_row: what an unreadable value (missing/corrupt file, non-number) does: error, skip or mask.
        seed, batch_size, lr, max_epochs, time_limit (seconds), threads: override the preset's training settings.
        finetune: train pretrained encoders' backbones too (default: frozen, features cached in ``cache_dir``,
            default ``~/.cache/mmfuse/features``).
        progress, verbose, devices, strategy, num_nodes, stream, sample_cache, workers, device: see
            ``BaseEstimator``.
    """

    default_preset, is_retrieval = "default", False
    network_: Any = None  # the ONNX Runtime network when loaded with backend="onnx" (else PyTorch runs the model)

    def __init__(self, *, label: str, task: str = "auto", preset: str = "default",
                 config: str | Path | dict | None = None, column_types: dict[str, str] | None = None,
                 encoders: dict[str, str] | None = None, fusion: str | None = None,
                 modality_dropout: float | None = None, ignore: list[str] | None = None, label_sep: str | None = None,
                 threshold: float = 0.5, on_bad_row: str = "mask", seed: int | None = None,
                 batch_size: int | None = None, lr: float | None = None, max_epochs: int | None = None,
                 time_limit: float | None = None, threads: int | None = None, finetune: bool = False,
                 cache_dir: str | Path | None = None, progress: Progress | None = None, verbose: bool = True,
                 devices: int | None = None, strategy: str | None = None, num_nodes: int | None = None,
                 stream: str = "auto", sample_cache: bool = True, workers: int = 0, device: str = "auto"):
        self._keep_settings(locals())

    def set_params(self, **params: Any) -> "Predictor":
        """scikit-learn's ``set_params``; a new ``threshold`` applies to a fitted model's next predictions too."""
        super().set_params(**params)
        if "threshold" in params and hasattr(self, "task_"):
            self.task_.threshold = self.threshold
        return self

    # --- what differs from the base -----------------------------------------------------------------------------
    def _extra_overrides(self) -> dict[str, Any]:
        overrides: dict[str, Any] = {}
        if self.fusion is not None:
            overrides["fusion"] = {"name": self.fusion}
        if self.modality_dropout is not None:
            overrides["modality_dropout"] = self.modality_dropout
        return overrides

    def _usable_rows(self, frame: pd.DataFrame, split: str) -> tuple[pd.DataFrame, list[int]]:
        """Rows with a label; the ids of those without."""
        if self.label not in frame.columns:
            raise DataError(f"{split}: label column {self.label!r} not found; columns are: "
                            f"{', '.join(map(str, frame.columns))}")
        labels = frame[self.label]
        missing = labels.isna() | labels.astype(str).str.strip().eq("")
        if missing.all():
            raise DataError(f"{split}: label column {self.label!r} is empty in every row")
        return frame[~missing], [int(i) for i in frame.index[missing]]

    def _with_labels(self, table: Table, y: Any) -> Table:
        if y is None:
            return table
        if isinstance(y, (str, Path, pd.DataFrame, Table)):
            raise TypeError("fit's second argument is y, the labels; pass a validation table as valid=...")
        labels = np.asarray(y)
        if labels.ndim != 1 or len(labels) != len(table.frame):
            raise DataError(f"y holds {labels.shape} labels for a table of {len(table.frame)} rows")
        return replace(table, frame=table.frame.assign(**{self.label: labels}))

    def _make_task(self, frame: pd.DataFrame):
        name = infer_task(frame[self.label], self.label_sep) if self.task == "auto" else self.task
        return create_task(name, self.label, self.label_sep, self.threshold)

    def _strata(self, frame: pd.DataFrame) -> np.ndarray | None:
        return frame[self.label].astype(str).to_numpy() if self.task_.name in ("binary", "multiclass") else None

    def _fit_task(self, frame: pd.DataFrame) -> None:
        self.task_.fit(frame[self.label])

    def _detect(self, frame: pd.DataFrame, root: Path) -> list[ColumnInfo]:
        return detect_columns(frame, self.label, root, self.column_types, self.ignore)

    def targets(self, frame: pd.DataFrame, split: EncodedSplit) -> torch.Tensor:
        """The encoded labels of a prepared split's rows (``frame`` as ``prepare`` returned it)."""
        return self.task_.encode(frame[self.label].loc[split.rows])

    def _build_model(self) -> MultiModalModel:
        cfg = self.config_
        return build_model(self._encoder_inputs(), self.task_.out_dim, cfg.fusion.name, cfg.fusion.params,
                           cfg.head.model_dump(), cfg.modality_dropout)

    def _score(self, dataset: TableDataset) -> dict[str, float]:
        return self.task_.metrics(dataset.target, self.predict_outputs(dataset.split))

    def _bundle_fields(self) -> dict[str, Any]:
        return {"label": self.label, "label_sep": self.label_sep}

    @classmethod
    def _from_bundle_fields(cls, config: dict[str, Any], **kwargs: Any) -> "Predictor":
        return cls(label=config["label"], label_sep=config.get("label_sep"),
                   threshold=config["task"].get("threshold", 0.5), **kwargs)

    @classmethod
    def load(cls, path: str | Path, verbose: bool = True, cache_dir: str | Path | None = None,
             backend: str = "torch", onnx_path: str | Path | None = None) -> "Predictor":
        """A saved model; ``backend="onnx"`` runs the network exported by ``mmfuse export`` (``onnx_path``,
        default MODEL/model.onnx) with onnxruntime, the processors staying as saved."""
        predictor = super().load(path, verbose=verbose, cache_dir=cache_dir)
        if backend == "onnx":
            from ..nn.export import weights_fingerprint
            from ..nn.onnx_runtime import OnnxNetwork

            predictor.network_ = OnnxNetwork(onnx_path or Path(path) / "model.onnx", predictor.inputs_,
                                             weights_fingerprint(predictor.model_), torch.get_num_threads())
        elif backend != "torch":
            raise ConfigError(f"backend must be 'torch' or 'onnx', not {backend!r}")
        return predictor

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "classes": self.task_.classes,
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
        table = read_table(data, split)
        frame, missing = self._usable_rows(table.frame, split) if labelled else (table.frame, [])
        needed = [c.name for c in self.columns_ if c.modality != "ignore"]
        absent = [c for c in needed if c not in frame.columns]
        if len(absent) == len(needed):
            raise DataError(f"{split}: none of the model's input columns ({', '.join(map(repr, needed))}) is in the table")
        if absent:
            self._log(f"{split}: column(s) {', '.join(map(repr, absent))} not in the table: predicting without them "
                      "(as missing in every row)", logging.WARNING)
            frame = frame.assign(**{c: np.nan for c in absent})
        return frame, self._encode(frame, table.root, split, missing)

    @torch.inference_mode()
    def predict_outputs(self, split: EncodedSplit, batch_size: int = 256, absent: frozenset[str] = frozenset(),
                        transform: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None) -> np.ndarray:
        """Task outputs (N, K) for every row of a prepared split: probabilities, or values for regression.

        ``absent``: inputs to treat as missing in every row; ``transform``: edits each batch's model inputs (the
        robustness analysis corrupts them with it).
        """
        self._check_fitted()
        onnx = self.network_
        device = torch.device("cpu") if onnx else self._model_on_device()
        dtype = autocast_dtype(self.config_.train.precision)
        logits = []
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None and not onnx):
            loader = make_loader(self.pipeline_.dataset(split), batch_size, shuffle=False,
                                 pin_memory=device.type == "cuda")
            for batch in loader:
                inputs = transform(batch.inputs) if transform else batch.inputs  # corruptions: on the CPU, seeded
                present = {n: m & (n not in absent) for n, m in batch.present.items()}
                if onnx:
                    logits.append(onnx.logits(inputs, present))
                    continue
                inputs = {n: x.to(device, non_blocking=True) for n, x in inputs.items()}
                present = {n: m.to(device, non_blocking=True) for n, m in present.items()}
                logits.append(self.model_(inputs, present).logits.float().cpu())
        return self.task_.outputs(torch.cat(logits))

    def corruptions(self) -> dict[str, dict[str, Corruption]]:
        """Input name -> corruption name -> function(prepared batch, level, generator), for robustness curves."""
        self._check_fitted()
        return self.pipeline_.corruptions()

    def predict_frame(self, data: TableLike) -> pd.DataFrame:
        """``row`` (the row's 0-based position in the table), ignored ID columns, ``inputs_used`` (the inputs present
        in that row, e.g. ``audio+image``), ``prediction`` and ``proba_<class>`` columns; indexed like the input (a
        DataFrame's own index; a file's rows 0..n-1), so ``frame.assign(pred=...)`` lines up on a filtered frame.
        Rows skipped as unreadable (``on_bad_row="skip"``) are absent."""
        table = read_table(data, "predict")
        frame, split = self.prepare(table, "predict")
        out = self.task_.prediction_frame(self.predict_outputs(split))
        keep = [c.name for c in self.columns_ if c.modality == "ignore" and c.name in frame.columns]
        ids = frame.loc[split.rows, keep].reset_index(drop=True)
        names = sorted(split.present)
        present = torch.stack([split.present[n] for n in names], dim=1).tolist()  # (N, M)
        used = ["+".join(n for n, on in zip(names, row) if on) or "none" for row in present]
        out = pd.concat([pd.DataFrame({"row": split.rows}), ids, pd.DataFrame({"inputs_used": used}), out], axis=1)
        return out.set_axis(table.labels(split.rows), axis=0)

    def predict(self, data: TableLike) -> pd.Series:
        """Predicted class (multilabel: the chosen labels joined by ``label_sep``) or value, indexed like the input."""
        return self.predict_frame(data)["prediction"].rename(self.label)

    def predict_proba(self, data: TableLike) -> pd.DataFrame:
        """Class probabilities, one column per class, indexed like the input (not for regression)."""
        self._check_fitted()
        if self.task_.name == "regression":
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
            if self.task_.name not in ("binary", "multiclass"):
                raise DataError(f"a confusion matrix needs a binary or multiclass model, not {self.task_.name}")
            plot_confusion(target.numpy(), outputs.argmax(1), self.task_.classes, confusion_plot)
        return {**self.task_.metrics(target, outputs), **row_accounting(split)}
