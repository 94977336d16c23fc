"""``Predictor``: the public entry point, with scikit-learn habits (``__init__`` stores, ``fit`` returns self,
learned state ends in ``_``) and AutoGluon's method names.

    p = Predictor(label="category", preset="default").fit("train.csv", valid="valid.csv")
    p.evaluate("test.csv")            # {"accuracy": ..., "macro_f1": ..., ...}
    p.predict_proba(frame)            # one column per class
    p.save("model/"); Predictor.load("model/")
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.table import Table as RichTable

from .bundle import load_bundle, load_weights, save_bundle
from .config import ModelConfig, load_config, setting_overrides, validate_config
from .data.dataset import EncodedSplit, TableDataset, describe_report, encode_split, make_loader
from .data.detect import ColumnInfo, detect_columns
from .data.preprocess import build_processors, input_values, restore_processors, use_cache_dir
from .data.table import Table, read_table, split_rows
from .errors import BundleError, ConfigError, DataError
from .model import MultiModalModel, build_model, with_finetuning
from .report import plot_confusion, plot_learning_curves
from .tasks import Task, create_task, infer_task

console = Console(stderr=True)
TableLike = "str | Path | pd.DataFrame | Table"


class Predictor:
    """Train, evaluate, predict with, save and load one fused multimodal model.

    Args:
        label: the label column.
        task: ``auto`` (inferred from the label) or binary / multiclass / multilabel / regression.
        preset: a built-in preset name (``mmfuse.config.list_presets()``).
        config: a YAML file or a mapping, merged over the preset.
        column_types: column -> modality overrides (text, image, numeric, categorical, ignore).
        encoders: column (or modality: text/image/audio/sequence/tabular) -> encoder name.
        fusion: fusion method name (``mmfuse.list_fusions()``); modality_dropout: train-time input dropout.
        ignore: columns not to use (IDs that would leak the label).
        label_sep: separator of a multilabel column of delimited strings.
        threshold: multilabel decision threshold.
        on_bad_row: what an unreadable value (missing/corrupt file, non-number) does: error, skip or mask.
        seed, batch_size, lr, max_epochs, time_limit (seconds), threads: override the preset's training settings.
        finetune: train pretrained encoders' backbones too (default: frozen, features cached in ``cache_dir``,
            default ``~/.cache/mmfuse/features``).
        progress: show progress bars; verbose: print the column table and data report.
    """

    def __init__(self, label: str, task: str = "auto", preset: str = "default", config: str | Path | dict | None = None,
                 column_types: dict[str, str] | None = None, encoders: dict[str, str] | None = None,
                 fusion: str | None = None, modality_dropout: float | None = None, ignore: list[str] | None = None, label_sep: str | None = None, threshold: float = 0.5,
                 on_bad_row: str = "mask", seed: int | None = None, batch_size: int | None = None,
                 lr: float | None = None, max_epochs: int | None = None, time_limit: float | None = None,
                 threads: int | None = None, finetune: bool = False, cache_dir: str | Path | None = None,
                 progress: bool = True, verbose: bool = True):
        self.label, self.task, self.preset, self.config = label, task, preset, config
        self.column_types, self.encoders, self.ignore = column_types, encoders, ignore
        self.fusion, self.modality_dropout = fusion, modality_dropout
        self.label_sep, self.threshold, self.on_bad_row = label_sep, threshold, on_bad_row
        self.seed, self.batch_size, self.lr, self.max_epochs = seed, batch_size, lr, max_epochs
        self.time_limit, self.threads, self.progress, self.verbose = time_limit, threads, progress, verbose
        self.finetune, self.cache_dir = finetune, cache_dir

    # --- configuration ------------------------------------------------------------------------------------------
    def _resolve_config(self) -> ModelConfig:
        if self.on_bad_row not in ("error", "skip", "mask"):
            raise ConfigError(f"on_bad_row must be error, skip or mask, not {self.on_bad_row!r}")
        overrides = setting_overrides({"seed": self.seed, "batch_size": self.batch_size, "lr": self.lr,
                                       "max_epochs": self.max_epochs, "time_limit": self.time_limit,
                                       "threads": self.threads}, self.encoders)
        if self.fusion is not None:
            overrides["fusion"] = {"name": self.fusion}
        if self.modality_dropout is not None:
            overrides["modality_dropout"] = self.modality_dropout
        cfg = load_config(self.preset, self.config, overrides)
        return with_finetuning(cfg) if self.finetune else cfg

    def _say(self, message: str) -> None:
        if self.verbose:
            console.print(message, highlight=False)

    # --- fit ----------------------------------------------------------------------------------------------------
    def fit(self, train: TableLike, valid: TableLike | None = None, callbacks: list | None = None) -> "Predictor":
        """Learn preprocessing and weights from ``train``; validate on ``valid`` or on a stratified hold-out.

        ``callbacks``: extra Lightning callbacks passed to the trainer (advanced use).
        """
        start = time.perf_counter()
        self.config_ = cfg = self._resolve_config()
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        table = read_table(train, "train")
        frame, label_missing = self._labelled_rows(table.frame, "train")
        task_name = infer_task(frame[self.label], self.label_sep) if self.task == "auto" else self.task
        self.task_ = create_task(task_name, self.label, self.label_sep, self.threshold)
        if valid is None:
            strata = frame[self.label].astype(str).to_numpy() if task_name in ("binary", "multiclass") else None
            train_idx, valid_idx = split_rows(strata, len(frame), cfg.train.valid_fraction, cfg.train.seed)
            valid_table, valid_missing = Table(frame.iloc[valid_idx], table.root, "valid"), []
            frame = frame.iloc[train_idx]
            self._say(f"validation: {len(valid_idx)} rows held out from train (seed {cfg.train.seed})")
        else:
            valid_table = read_table(valid, "valid")
            valid_table.frame, valid_missing = self._labelled_rows(valid_table.frame, "valid")
        self.task_.fit(frame[self.label])

        self.columns_ = detect_columns(frame, self.label, table.root, self.column_types, self.ignore)
        self._show_columns()
        self.processors_ = build_processors(self.columns_, cfg)
        use_cache_dir(self.processors_, self.cache_dir)
        for name, proc in self.processors_.items():
            proc.fit(input_values(frame, name, proc), table.root)

        train_split = self._encode(frame, table.root, "train", label_missing)
        valid_split = self._encode(valid_table.frame, valid_table.root, "valid", valid_missing)
        self.data_report_ = {"train": train_split.report, "valid": valid_split.report}
        train_set = TableDataset(train_split, self.processors_, self._targets(frame, train_split), train=True)
        valid_set = TableDataset(valid_split, self.processors_, self._targets(valid_table.frame, valid_split))

        torch.manual_seed(cfg.train.seed)  # weight init is part of the seeded run
        self.model_ = self._build_model()
        n_params = sum(p.numel() for p in self.model_.parameters() if p.requires_grad)
        self._say(f"task: {task_name}; model: {n_params:,} trainable parameters; "
                  f"train {len(train_set)} rows, valid {len(valid_set)} rows")
        from .training import train as run_training  # lightning is imported only when training

        self.history_ = run_training(self.model_, self.task_, train_set, valid_set, cfg.train, self.progress,
                                     callbacks)
        self.fit_time_ = time.perf_counter() - start
        self.metrics_ = {"valid": self._score(valid_set), "epochs": len(self.history_),
                         "fit_seconds": round(self.fit_time_, 2), "parameters": n_params}
        return self

    def _labelled_rows(self, frame: pd.DataFrame, split: str) -> tuple[pd.DataFrame, list[int]]:
        if self.label not in frame.columns:
            raise DataError(f"{split}: label column {self.label!r} not found; columns are: "
                            f"{', '.join(map(str, frame.columns))}")
        labels = frame[self.label]
        missing = labels.isna() | labels.astype(str).str.strip().eq("")
        if missing.all():
            raise DataError(f"{split}: label column {self.label!r} is empty in every row")
        return frame[~missing], [int(i) for i in frame.index[missing]]

    def _encode(self, frame: pd.DataFrame, root: Path, split: str, label_missing: list[int] = ()) -> EncodedSplit:
        encoded = encode_split(frame, root, self.processors_, self.on_bad_row, split)
        if label_missing:
            encoded.report["label_missing"] = list(label_missing)
        for line in describe_report(encoded.report, split):
            self._say(f"[yellow]{line}[/yellow]")
        if len(encoded.rows) == 0:
            raise DataError(f"{split}: no usable rows left after skipping unreadable values")
        return encoded

    def _targets(self, frame: pd.DataFrame, split: EncodedSplit) -> torch.Tensor:
        return self.task_.encode(frame[self.label].loc[split.rows])

    def _build_model(self) -> MultiModalModel:
        specs = {name: (proc.modality, proc.encoder_kwargs()) for name, proc in self.processors_.items()}
        return build_model(self.config_, specs, self.task_.out_dim)

    def _show_columns(self) -> None:
        if not self.verbose:
            return
        table = RichTable(title="columns", title_justify="left")
        for header in ("column", "modality", "why"):
            table.add_column(header)
        for col in self.columns_:
            table.add_row(str(col.name), col.modality, col.reason)
        console.print(table)

    # --- inference ----------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise DataError("this Predictor is not fitted yet: call fit() or Predictor.load()")

    def _prepare(self, data: TableLike, split: str, need_label: bool) -> tuple[pd.DataFrame, EncodedSplit]:
        self._check_fitted()
        table = read_table(data, split)
        frame, missing = self._labelled_rows(table.frame, split) if need_label else (table.frame, [])
        needed = [c.name for c in self.columns_ if c.modality != "ignore"]
        absent = [c for c in needed if c not in frame.columns]
        if len(absent) == len(needed):
            raise DataError(f"{split}: none of the model's input columns ({', '.join(map(repr, needed))}) is in the table")
        if absent:
            console.print(f"[yellow]{split}: column(s) {', '.join(map(repr, absent))} not in the table: "
                          "predicting without them (as missing in every row)[/yellow]", highlight=False)
            frame = frame.assign(**{c: np.nan for c in absent})
        return frame, self._encode(frame, table.root, split, missing)

    @torch.inference_mode()
    def _outputs(self, split: EncodedSplit, batch_size: int = 256, absent: frozenset[str] = frozenset(),
                 transform: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None) -> np.ndarray:
        """Task outputs for every row; ``absent`` inputs are marked missing, ``transform`` edits model inputs
        (both used by the robustness analysis)."""
        dataset = TableDataset(split, self.processors_)
        self.model_.eval()
        logits = []
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.config_.train.precision == "bf16"):
            for batch in make_loader(dataset, batch_size, shuffle=False):
                inputs = transform(batch.inputs) if transform else batch.inputs
                present = {n: m & (n not in absent) for n, m in batch.present.items()}
                logits.append(self.model_(inputs, present).logits.float())
        return self.task_.outputs(torch.cat(logits))

    def _score(self, dataset: TableDataset) -> dict[str, float]:
        return self.task_.metrics(dataset.target, self._outputs(dataset.split))

    def predict_frame(self, data: TableLike) -> pd.DataFrame:
        """``row`` (the input's row id), ignored ID columns, ``inputs_used`` (the inputs present in that row, e.g.
        ``audio+image``), ``prediction`` and ``proba_<class>`` columns."""
        frame, split = self._prepare(data, "predict", need_label=False)
        out = self.task_.prediction_frame(self._outputs(split))
        keep = [c.name for c in self.columns_ if c.modality == "ignore" and c.name in frame.columns]
        ids = frame.loc[split.rows, keep].reset_index(drop=True)
        names = sorted(split.present)
        present = torch.stack([split.present[n] for n in names], dim=1).tolist()  # (N, M)
        used = ["+".join(n for n, on in zip(names, row) if on) or "none" for row in present]
        return pd.concat([pd.DataFrame({"row": split.rows}), ids, pd.DataFrame({"inputs_used": used}), out], axis=1)

    def predict(self, data: TableLike) -> pd.Series:
        """Predicted class (multilabel: the chosen labels joined by ``label_sep``) or value, indexed by row id."""
        out = self.predict_frame(data)
        return pd.Series(out["prediction"].to_numpy(), index=out["row"].to_numpy(), name=self.label)

    def predict_proba(self, data: TableLike) -> pd.DataFrame:
        """Class probabilities, one column per class, indexed by row id (not for regression)."""
        if self.task_.name == "regression":
            raise DataError("predict_proba is for classification; this model does regression: use predict")
        out = self.predict_frame(data)
        proba = out[[c for c in out.columns if c.startswith("proba_")]]
        proba.columns = [c[len("proba_"):] for c in proba.columns]
        return proba.set_index(out["row"].to_numpy())

    def evaluate(self, data: TableLike, confusion_plot: str | Path | None = None) -> dict[str, float]:
        """Metrics on a labelled table (rows with a missing label are reported and left out).

        ``confusion_plot``: also write a confusion-matrix PNG there (binary / multiclass).
        """
        frame, split = self._prepare(data, "evaluate", need_label=True)
        target = self.task_.encode(frame[self.label].loc[split.rows])
        outputs = self._outputs(split)
        if confusion_plot is not None:
            if self.task_.name not in ("binary", "multiclass"):
                raise DataError(f"a confusion matrix needs a binary or multiclass model, not {self.task_.name}")
            plot_confusion(target.numpy(), outputs.argmax(1), self.task_.classes, confusion_plot)
        return self.task_.metrics(target, outputs)

    # --- persistence --------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model folder (JSON + safetensors); returns its path."""
        self._check_fitted()
        config = {"label": self.label, "label_sep": self.label_sep, "on_bad_row": self.on_bad_row,
                  "task": self.task_.state_dict(), "columns": [vars(c) for c in self.columns_],
                  "model": self.config_.model_dump(mode="json")}
        processors = {name: proc.state_dict() for name, proc in self.processors_.items()}
        out = save_bundle(path, config, processors, self.model_.state_dict(), self.metrics_, self.data_report_,
                          self.history_)
        if self.history_:
            plot_learning_curves(self.history_, out / "learning_curves.png", self.task_.primary_metric)
        return out

    @classmethod
    def load(cls, path: str | Path, verbose: bool = True, cache_dir: str | Path | None = None) -> "Predictor":
        """Rebuild a saved model from its config and weights (checksum and format version verified)."""
        bundle = load_bundle(path)
        config = bundle.config
        if config.get("task", {}).get("name") == "retrieval":
            raise BundleError(f"{path} is a retrieval model: load it with mmfuse.Retriever.load or mmfuse.load")
        predictor = cls(label=config["label"], label_sep=config.get("label_sep"),
                        on_bad_row=config.get("on_bad_row", "mask"), cache_dir=cache_dir, verbose=verbose)
        predictor.config_ = validate_config(config["model"], f"{path}/config.json")
        predictor.task_ = Task.from_state(config["task"])
        predictor.threshold = predictor.task_.threshold
        predictor.columns_ = [ColumnInfo(**c) for c in config["columns"]]
        predictor.processors_ = restore_processors(bundle.processors, cache_dir)
        predictor.model_ = predictor._build_model()
        load_weights(predictor.model_, bundle.weights, path)
        predictor.metrics_, predictor.data_report_, predictor.history_ = bundle.metrics, bundle.data_report, bundle.history
        return predictor


def load(path: str | Path, verbose: bool = True, cache_dir: str | Path | None = None):
    """Load any saved mmfuse model: a ``Predictor``, or a ``Retriever`` for a retrieval model."""
    from .bundle import read_bundle_config

    if read_bundle_config(path).get("task", {}).get("name") == "retrieval":
        from .retrieval import Retriever

        return Retriever.load(path, verbose=verbose, cache_dir=cache_dir)
    return Predictor.load(path, verbose=verbose, cache_dir=cache_dir)
