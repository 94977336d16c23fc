"""``BaseEstimator``: ``fit``, ``save`` and ``load`` written once; ``Predictor`` and ``Retriever`` supply what differs.

Scikit-learn habits: ``__init__`` only stores its arguments, ``fit`` returns self, learned state ends in ``_``, and
using an estimator before ``fit`` or ``load`` raises ``NotFittedError``. The library never prints: messages go to
the ``mmfuse`` logger, long work reports to the ``progress`` callback (the CLI draws both).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator as SklearnEstimator
from torch import Tensor, nn

from ..config import ModelConfig, load_config, setting_overrides, validate_config, with_finetuning
from ..core.columns import ColumnInfo
from ..core.devices import process_rank, resolve_device
from ..core.modality import is_empty, resolve_path
from ..core.processor import Progress
from ..core.sets import set_elements
from ..data.dataset import EncodedSplit, TableDataset, describe_report
from ..data.streaming import Streaming
from ..data.table import Table, read_table, split_rows
from ..errors import BundleError, ConfigError, DataError, NotFittedError
from ..io.bundle import damaged, load_bundle, load_weights, read_bundle_config, save_bundle
from ..io.checkpoint import foreign_entries, remove_checkpoints, saved_epoch, saved_members
from ..nn.model import EncoderChoice
from ..pipeline import (POLICIES, InputPipeline, InputPlan, check_encoder_keys, input_traits, inputs_summary,
                        plan_inputs)
from ..plots import plot_learning_curves
from ..plugins import plugin_modules, require_plugins
from ..portfolio import FitData, MemberStore, NetworkMember, NetworkPlan, Portfolio, PortfolioFit, TimeBudget
from ..registry import ENCODERS, FUSIONS, MODALITIES
from ..tasks import is_labelled, task_from_state
from ..version import __version__
from .arguments import misplaced
from .migrations import input_plans, processor_states
from .timing import Stopwatch, describe_stages, stage_seconds

log = logging.getLogger("mmfuse")
TableLike = "str | Path | pd.DataFrame | Table | TableFile"


class BaseEstimator(SklearnEstimator):
    """What ``Predictor`` and ``Retriever`` share. Their settings are keyword-only constructor arguments, kept as
    given (scikit-learn's rule, so ``get_params`` / ``set_params`` / ``clone`` / ``GridSearchCV`` work) and read
    by ``fit``; grouped there into the config's overrides (``_resolve_config``) and the runtime (``set_runtime``).

    Shared settings: preset, config, encoders, column_types, finetune, cache_dir, on_bad_row, the training
    overrides (seed, batch_size, lr, max_epochs, time_limit, threads), progress and verbose, distributed training
    (devices, strategy "ddp", num_nodes: run as a script or the CLI, each process runs it), the input pipeline's
    runtime settings (stream: auto / on / off, sample_cache, workers: ``data.streaming.Streaming``) and the device
    (auto: a CUDA GPU when there is one, for feature extraction, training, prediction and robustness).

    Args:
        progress: a callable ``(what, done, total)`` that receives the progress of every long stage (reading images,
            computing pretrained features, training epochs); the library itself never draws a bar.
        verbose: log what the estimator does at INFO (column detection, data problems); off: at DEBUG.
    """

    default_preset: ClassVar[str]
    is_retrieval: ClassVar[bool]
    global_rank_: int = 0  # under DDP, this process's rank once fitted (only rank 0 writes files)

    def __new__(cls, *args: Any, **kwargs: Any) -> "BaseEstimator":
        settings = inspect.signature(cls.__init__).parameters
        if args:  # name the keywords the positional values were probably meant for
            names = [n for n in settings if n != "self"]
            given = ", ".join(f"{n}={a!r}" for n, a in zip(names, args))
            raise TypeError(f"{cls.__name__} takes keyword arguments only: {cls.__name__}({given}, ...)")
        unknown = {k: v for k, v in kwargs.items() if k not in settings}
        if unknown:
            raise TypeError(misplaced(cls, cls.__init__, unknown))
        return super().__new__(cls)

    def _keep_settings(self, given: dict[str, Any]) -> None:
        """Store each constructor argument (``locals()`` of a subclass ``__init__``) under its own name, unchanged."""
        for name, value in given.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    # --- what subclasses supply ---------------------------------------------------------------------------------
    def _extra_overrides(self) -> dict[str, Any]:
        """Config overrides beyond the shared ones (fusion, modality dropout)."""
        return {}

    def _usable_rows(self, frame: pd.DataFrame, split: str) -> tuple[pd.DataFrame, list[int]]:
        """The rows and columns fit and evaluate use, and the row ids left out (e.g. no label)."""
        raise NotImplementedError

    def _with_labels(self, table: Table, y: Any) -> Table:
        """The table with ``y`` (labels in row order, or None: the table's own) as its label column."""
        if y is not None:
            raise TypeError(f"{type(self).__name__} takes no y: each row of its table is an example")
        return table

    def _make_task(self, frame: pd.DataFrame) -> Any:
        raise NotImplementedError

    def _strata(self, frame: pd.DataFrame) -> np.ndarray | None:
        """Values to stratify the validation hold-out by (None: a plain random split)."""
        return None

    def _fit_task(self, frame: pd.DataFrame) -> None:
        """Learn the task's state (classes, scaling) from the training rows."""

    def _detect(self, frame: pd.DataFrame, root: Path) -> list[ColumnInfo]:
        raise NotImplementedError

    def targets(self, frame: pd.DataFrame, split: EncodedSplit) -> Tensor:
        """What the model is trained against for the rows a split kept (``frame``: the table those rows came from)."""
        raise NotImplementedError

    def _build_model(self) -> nn.Module:
        raise NotImplementedError

    def _score(self, dataset: TableDataset) -> dict[str, float]:
        raise NotImplementedError

    def _bundle_fields(self) -> dict[str, Any]:
        """What ``load`` needs to construct the estimator again (label, query/target, ...)."""
        raise NotImplementedError

    @classmethod
    def _from_bundle_fields(cls, config: dict[str, Any], **kwargs: Any) -> "BaseEstimator":
        raise NotImplementedError

    # --- configuration and messages -----------------------------------------------------------------------------
    def _resolve_config(self) -> ModelConfig:
        if self.on_bad_row not in POLICIES:
            raise ConfigError(f"on_bad_row must be error, skip or mask, not {self.on_bad_row!r}")
        if self.time_limit is not None and not (isinstance(self.time_limit, (int, float)) and
                                                math.isfinite(self.time_limit) and self.time_limit > 0):
            raise ConfigError(f"time_limit must be a finite number of seconds above 0, not {self.time_limit!r}")
        overrides = setting_overrides({"seed": self.seed, "batch_size": self.batch_size, "lr": self.lr,
                                       "max_epochs": self.max_epochs, "threads": self.threads, "devices": self.devices, "strategy": self.strategy,
                                       "num_nodes": self.num_nodes}, self.encoders)
        cfg = load_config(self.preset or self.default_preset, self.config, {**overrides, **self._extra_overrides()})
        return with_finetuning(cfg) if self.finetune else cfg

    def _log(self, message: str, level: int = logging.INFO) -> None:
        log.log(level if self.verbose else logging.DEBUG, message)

    def set_runtime(self, device: str | None = None, workers: int | None = None, stream: str | None = None,
                    sample_cache: bool | None = None, progress: Progress | None = None) -> "BaseEstimator":
        """Change how a fitted or loaded estimator runs (the settings given; None keeps one): device, DataLoader
        workers, streaming of large inputs, the sample cache, the progress callback. Returns self."""
        for name, value in (("device", device), ("workers", workers), ("stream", stream),
                            ("sample_cache", sample_cache), ("progress", progress)):
            if value is not None:
                setattr(self, name, value)
        if hasattr(self, "pipeline_"):
            self.pipeline_.use_streaming(self._streaming()).use_device(self._device())
            self.pipeline_.use_progress(self._progress_callback())
        return self

    def _device(self) -> str:
        """"cpu" or "cuda": where features are extracted and the model trains and predicts."""
        return resolve_device(self.device)

    def _model_on_device(self) -> torch.device:
        """The model, in eval mode, on this estimator's device (moved there if needed); returns the device."""
        device = torch.device(self._device())
        self.model_.to(device).eval()
        return device

    def _streaming(self) -> Streaming:
        return Streaming(self.stream, self.workers, self.sample_cache,
                         None if self.cache_dir is None else str(self.cache_dir))

    def _progress_callback(self) -> Callable[[str, int, int], None] | None:
        return self.progress if callable(self.progress) else None

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit() or "
                                 f"{type(self).__name__}.load()")

    # --- fit ----------------------------------------------------------------------------------------------------
    def fit(self, train: TableLike, y: Any = None, *, valid: TableLike | None = None, callbacks: list | None = None,
            checkpoint_dir: str | Path | None = None, resume: bool = False, restart: bool = False,
            checkpoint_every: float = 0.0, **misplaced_arguments: Any) -> "BaseEstimator":
        """Learn preprocessing and weights from ``train``; validate on ``valid`` or on a seeded hold-out.

        ``y``: labels for ``train``'s rows, in order (scikit-learn's ``fit(X, y)``); None: the label column of
        ``train``.

        ``callbacks``: extra Lightning callbacks passed to the trainer (advanced use); ``checkpoint_dir``: save the
        run's state there after every epoch, or after the first epoch that ends ``checkpoint_every`` seconds after
        the last save (safetensors + JSON); ``resume``: continue from the last epoch saved there by an interrupted
        fit of the same data and settings (preprocessing is redone, training is not); ``restart``: discard what an
        interrupted fit saved there (without ``resume`` or ``restart``, a saved checkpoint is an error).
        """
        if misplaced_arguments:  # a constructor setting, another tool's name or a typo: say where it belongs
            raise TypeError(misplaced(type(self), BaseEstimator.fit, misplaced_arguments))
        clock, budget = Stopwatch(), TimeBudget(self.time_limit)
        self.config_ = self._resolve_config()
        rank, world = self._process_rank()
        first = rank == 0  # DDP: rank 0 saves
        if resume and world > 1:
            raise ConfigError("--resume is not supported with several devices yet: resume on one device")
        check_checkpoint_use(checkpoint_dir if first else None, resume, restart)
        self._apply_process_settings()
        splits = self._read_splits(train, y, valid, clock)
        self._learn_columns(splits, budget)
        train_set, valid_set, features = self._preprocess(splits, clock)
        fingerprint = None if checkpoint_dir is None else run_fingerprint(self._resume_parts(splits))
        store = None if checkpoint_dir is None or not first else MemberStore(Path(checkpoint_dir), fingerprint, resume)
        with clock("set-up"):
            torch.manual_seed(self.config_.train.seed)  # weight init is part of the seeded run
            self.model_ = self._build_model()
        checkpoints = None if checkpoint_dir is None else {"folder": Path(checkpoint_dir), "fingerprint": fingerprint,
                                                           "resume": resume, "every_seconds": checkpoint_every}
        network = self._network_member(self._network_plan(callbacks, checkpoints))
        cfg = self.config_.portfolio
        fitting = PortfolioFit(self._member_names(), self.task_, budget, seed=self.config_.train.seed,
                               threads=torch.get_num_threads(), log=self._log, given={network.name: network},
                               store=store, rounds=cfg.rounds, calibrate=cfg.calibrate, rank=rank, world=world)
        with clock("members"):
            self.portfolio_ = fitting.run(FitData(train_set, valid_set, self.pipeline_.dataset,
                                                  self.pipeline_.processors))
        clock.move("members", "training", network.fit_seconds)
        if self.portfolio_.lone:
            clock.seconds.pop("members")
        chosen = ", ".join(f"{n} {w:.2f}" for n, w in self.portfolio_.weights.items())
        if not self.portfolio_.lone:
            self._log(f"ensemble: {chosen}" + "".join(f"; {k.replace('_', ' ')} {v:.4f}"
                                                      for k, v in self.portfolio_.calibration.items()))
        self._record(network.result, valid_set, features, clock)
        return self

    def _member_names(self) -> list[str]:
        """The portfolio's members this fit trains (the network alone, unless a subclass holds a portfolio)."""
        return [NetworkMember.name]

    def _network_plan(self, callbacks: list | None, checkpoints: dict[str, Any] | None) -> NetworkPlan:
        """How the network trains in this fit (the config's settings; the trainer's callbacks and runtime)."""
        return NetworkPlan(self.config_.train, self._progress_callback(), list(callbacks or []), checkpoints,
                           "gpu" if self._device() == "cuda" else "cpu", logging.INFO if self.verbose else logging.DEBUG,
                           self.pipeline_.batch_rows())

    def _network_member(self, plan: NetworkPlan | None = None) -> NetworkMember:
        """The network as a portfolio member, on this estimator's device."""
        return NetworkMember(self.model_, plan, self._device(), self.config_.train.precision)

    def _process_rank(self) -> tuple[int, int]:
        """(global rank, world size) of this process under the config's devices and nodes ((0, 1) alone)."""
        return process_rank(self.config_.train.devices, self.config_.train.num_nodes)

    # --- the stages of fit --------------------------------------------------------------------------------------
    def _apply_process_settings(self) -> None:
        """Torch's thread count from the config; float16 autocast refused on a CPU."""
        if self.config_.train.precision == "16" and self._device() == "cpu":
            raise ConfigError("precision 16 (float16 autocast) needs a GPU; on a CPU use bf16")
        if self.config_.train.threads:
            torch.set_num_threads(self.config_.train.threads)

    def _read_splits(self, train: TableLike, y: Any, valid: TableLike | None, clock: Stopwatch) -> FitSplits:
        """The labelled rows to learn from and to validate on (a seeded, stratified hold-out of ``train`` when
        ``valid`` is None); makes the task from the training labels."""
        with clock("read"):
            table = self._with_labels(read_table(train, "train"), y)
        frame, left_out = self._usable_rows(table.frame, "train")
        self.task_ = self._make_task(frame)
        if valid is not None:
            with clock("read"):
                valid_table = read_table(valid, "valid")
            valid_frame, valid_left_out = self._usable_rows(valid_table.frame, "valid")
            return FitSplits(frame, valid_frame, table.root, valid_table.root, left_out, valid_left_out,
                             list(table.frame.columns))
        seed = self.config_.train.seed
        train_idx, valid_idx = split_rows(self._strata(frame), len(frame), self.config_.train.valid_fraction, seed)
        self._log(f"validation: {len(valid_idx)} rows held out from train (seed {seed})")
        return FitSplits(frame.iloc[train_idx], frame.iloc[valid_idx], table.root, table.root, left_out, [],
                         list(table.frame.columns))

    def _learn_columns(self, splits: FitSplits, budget: TimeBudget) -> None:
        """The task's state (classes, scaling), each column's modality and each input's encoder (within what
        ``budget`` allows frozen features), from the training rows; the column table is logged."""
        self._fit_task(splits.train)
        self.columns_ = self._detect(splits.train, splits.train_root)
        for warning in check_encoder_keys(self.encoders or {}, self.columns_, splits.columns):
            self._log(warning, logging.WARNING)
        self.config_ = self.config_.for_columns(input_traits(self.columns_))
        self.plan_ = self._plan_inputs(splits, budget)
        rows = [(i["column"], i["modality"], i["encoder"],
                 i["reason"] + (f"; {i['chosen_by']}" if i["chosen_by"] else "")) for i in self._inputs()]
        self._log("columns:\n" + "\n".join(f"  {c!s:<24} {m:<12} {e:<18} {why}"
                                            for c, m, e, why in [("column", "modality", "encoder", "why"), *rows]))

    def _plan_inputs(self, splits: FitSplits, budget: TimeBudget) -> dict[str, InputPlan]:
        """Each input's encoder and processor (``plan_inputs``) under the config."""
        return plan_inputs(self.columns_, self.config_)

    def _resume_parts(self, splits: FitSplits) -> dict[str, Any]:
        """What a resumed fit must share with the one it continues, by the name its refusal gives a change."""
        return {"the label or task": {**self._bundle_fields(), "task": self.task_.name},
                "the settings (preset, config, encoders, fusion, training options)": self.config_.model_dump(mode="json"),
                "the column types": {c.name: c.modality for c in self.columns_},
                "--on-bad-row": self.on_bad_row,
                "the training rows": frame_digest(splits.train), "the validation rows": frame_digest(splits.valid),
                "the files the tables name (size or modification time)": [
                    files_digest(splits.train, self.columns_, splits.train_root),
                    files_digest(splits.valid, self.columns_, splits.valid_root)]}

    def _preprocess(self, splits: FitSplits, clock: Stopwatch) -> tuple[TableDataset, TableDataset, dict]:
        """Fit the input pipeline on the training rows and transform both splits: (train set, validation set, what
        each split's cached-feature inputs computed)."""
        train, valid = splits.train, splits.valid
        absent = [c.name for c in self.columns_ if c.modality != "ignore" and c.name not in valid.columns]
        if absent:
            raise DataError(f"valid: the training column(s) {', '.join(map(repr, absent))} are not in the validation "
                            f"table; its columns are: {', '.join(map(str, valid.columns))}")
        self.pipeline_ = InputPipeline.plan(self.plan_, self.columns_, self.cache_dir)
        self.set_runtime()  # streaming, device and progress as this estimator's settings say
        self._log(f"preprocessing: {len(train):,} train and {len(valid):,} validation rows")
        with clock("fit preprocessing"):
            self.pipeline_.fit(train, splits.train_root)
        with clock("preprocess"):
            train_split = self._encode(train, splits.train_root, "train", splits.train_left_out)
            features = {"train": self._extraction("train")}
            valid_split = self._encode(valid, splits.valid_root, "valid", splits.valid_left_out)
            features["valid"] = self._extraction("valid")
        self.data_report_ = {"train": train_split.report, "valid": valid_split.report}
        return (self.pipeline_.dataset(train_split, self.targets(train, train_split), train=True),
                self.pipeline_.dataset(valid_split, self.targets(valid, valid_split)), features)

    def _parameter_count(self) -> int:
        return sum(p.numel() for p in self.model_.parameters() if p.requires_grad)

    def _record(self, result: Any, valid_set: TableDataset, features: dict, clock: Stopwatch) -> None:
        """What the fit did: history, validation metrics, restored epoch (None: the network did not train), time
        per stage."""
        self.history_, self.global_rank_ = (result.history, result.global_rank) if result else ([], 0)
        self.fit_time_ = clock.total()
        self.trained_with_ = __version__
        self.metrics_ = {"valid": self._score(valid_set), "epochs": len(self.history_),
                         "restored_epoch": result.restored_epoch if result else None,
                         "stopped": result.stopped if result else None,
                         "fit_seconds": round(self.fit_time_, 2), "parameters": self._parameter_count(),
                         "processes": result.processes if result else 1}
        if any(features.values()):
            self.metrics_["features"] = features  # split -> input -> computed / from the cache / seconds
        self.metrics_["stages"] = stage_seconds(clock, features, self.history_)
        self._log("time: " + describe_stages(self.metrics_["stages"], len(self.history_)), logging.DEBUG)

    def score(self, X: TableLike, y: Any = None) -> float:
        """The primary validation metric on a labelled table (``y``: its labels, or None: its label column), higher
        is better: accuracy, micro-F1, mean recall, or for regression minus the RMSE (scikit-learn's ``score``)."""
        self._check_fitted()
        metrics = self.evaluate(self._with_labels(read_table(X, "score"), y))
        value = metrics[self.task_.primary_metric]
        return value if self.task_.maximize else -value

    def _extraction(self, split: str) -> dict[str, dict[str, float]]:
        """What the last transform computed per cached-feature input, logged as it happens."""
        stats = self.pipeline_.extraction()
        for name, e in stats.items():
            rejected = f" ({e['rejected']} damaged cache entries computed again)" if e.get("rejected") else ""
            self._log(f"{split} {name!r} features: {e['computed']} computed, {e['cached']} from the cache{rejected}, "
                      f"{e['seconds']:.1f} s")
        return stats

    def _encode(self, frame: pd.DataFrame, root: Path, split: str, left_out: list[int] = (),
                pipeline: InputPipeline | None = None, on_bad_row: str | None = None) -> EncodedSplit:
        """Transform a table with the fitted pipeline (or a part of it), log its data report, refuse an empty one."""
        encoded = (pipeline or self.pipeline_).transform(frame, root, on_bad_row or self.on_bad_row, split)
        if left_out:
            encoded.report["label_missing"] = list(left_out)
        for line in describe_report(encoded.report, split):
            self._log(line, logging.WARNING)
        for name, how in encoded.report.get("streamed", {}).items():
            where = (f"{how['stored_mb']:,.0f} MB in the sample cache ({how['cache']}, {how['folder']})"
                     if how["cache"] != "off" else "decoded per batch (no sample cache)")
            self._log(f"{split}: input {name!r} streamed: {where}; {how['seconds']:.1f} s")
        if len(encoded.rows) == 0:
            raise DataError(f"{split}: no usable rows left after skipping unreadable values")
        return encoded

    # --- description and persistence ----------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """What the fitted model is: task, inputs with their encoders, training figures (for ``mmfuse info``)."""
        self._check_fitted()
        return {"task": self.task_.name, "inputs": self._inputs(), "metrics": self.metrics_,
                "mmfuse": self.trained_with_, "plugins": self._plugin_modules(), **self._bundle_fields()}

    def _inputs(self) -> list[dict[str, Any]]:
        """Each column with its modality, why it was detected, its encoder and the rule that picked it (if one)."""
        return inputs_summary(self.columns_, self.plan_)

    def _encoder_inputs(self) -> dict[str, tuple[EncoderChoice, dict[str, Any]]]:
        """Input name -> (its planned encoder, what its fitted processor tells the encoder): what a builder needs."""
        return {name: (plan.choice(), self.pipeline_.processors[name].encoder_kwargs())
                for name, plan in self.plan_.items()}

    def save(self, path: str | Path) -> Path:
        """Write the model folder (JSON + safetensors); returns its path. Under DDP only the process of global
        rank 0 writes (the others return the path without writing)."""
        self._check_fitted()
        if self.global_rank_ != 0:
            return Path(path)
        config = {**self._bundle_fields(), "on_bad_row": self.on_bad_row, "task": self.task_.state_dict(),
                  "columns": [vars(c) for c in self.columns_], "model": self.config_.model_dump(mode="json"),
                  "inputs": [asdict(p) for p in self.plan_.values()], "plugins": self._plugin_modules()}
        def extras(folder: Path) -> None:
            if self.history_:
                metric, ensemble = self.task_.primary_metric, not self.portfolio_.lone
                plot_learning_curves(self.history_, folder / "learning_curves.png", metric,
                                     self.metrics_.get("restored_epoch"),
                                     self.metrics_["valid"].get(metric) if ensemble else None,
                                     self.portfolio_.weights.get(NetworkMember.name, 0.0) if ensemble else None)
            self._save_extras(folder)

        out = save_bundle(path, {**config, **self._extra_config()}, self.pipeline_.state_dict(),
                          self.model_.state_dict(), self.metrics_, self.data_report_, self.history_, extras)
        self.path_ = str(out)
        return out

    def _extra_config(self) -> dict[str, Any]:
        """What a subclass adds to config.json (a portfolio's member names)."""
        return {}

    def _save_extras(self, folder: Path) -> None:
        """Files a subclass adds to the bundle before it is sealed (a portfolio's members)."""

    def _load_extras(self, folder: Path, config: dict[str, Any]) -> None:
        """Read what ``_save_extras`` wrote (the bundle's checksums are verified already); here: the network alone."""
        self.portfolio_ = Portfolio.alone(NetworkMember.name, self._network_member())

    def _plugin_modules(self) -> list[str]:
        """The modules outside mmfuse whose modalities, processors, encoders or fusion this model uses."""
        self._check_fitted()
        used = [type(p) for p in self.pipeline_.processors.values()] + [FUSIONS.get(self.config_.fusion.name)]
        used += [ENCODERS.get(p.encoder) for p in self.plan_.values()]
        used += [MODALITIES.get(c.modality).detect for c in self.columns_ if c.modality != "ignore"]
        return plugin_modules(used)

    @classmethod
    def load(cls, path: str | Path, verbose: bool = True, cache_dir: str | Path | None = None,
             plugins: Iterable[str] = ()) -> "BaseEstimator":
        """Rebuild a saved model from its config and weights (checksums, format version and backbone identity
        verified; bundles of older formats are read as today's: ``migrations``). The plugin modules it was trained
        with must be imported or allowed: installed entry points, ``--plugin``, ``MMFUSE_PLUGINS`` or ``plugins``
        (a model folder never imports a module by itself)."""
        bundle = load_bundle(path)
        config = bundle.config
        require_plugins(config.get("plugins", []), str(path), plugins)
        if is_labelled(config.get("task", {}).get("name")) == cls.is_retrieval:
            other = "a retrieval model: load it with mmfuse.Retriever.load" if not cls.is_retrieval else \
                "not a retrieval model: load it with mmfuse.Predictor.load"
            raise BundleError(f"{path} is {other} or mmfuse.load")
        try:
            saved_policy = {"on_bad_row": config["on_bad_row"]} if "on_bad_row" in config else {}
            estimator = cls._from_bundle_fields(config, cache_dir=cache_dir, verbose=verbose, **saved_policy)
            estimator.config_ = validate_config(config["model"], f"{path}/config.json")
            estimator.task_ = task_from_state(config["task"])
            estimator.pipeline_ = InputPipeline.from_state(processor_states(bundle.processors, bundle.format_version),
                                                           cache_dir)
            estimator.set_runtime()
            estimator.columns_ = [ColumnInfo(**c) for c in config["columns"]]
            estimator.plan_ = input_plans(config, estimator.columns_, estimator.config_)
            estimator.model_ = estimator._build_model()
        except ConfigError as err:
            raise damaged(Path(path), f"{err} (a model that uses a plugin loads after the plugin is imported: "
                                      "--plugin MODULE, or import it first)") from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:  # fields missing or mistyped
            raise damaged(Path(path), f"config.json or processors.json does not describe a model this mmfuse can "
                                      f"build ({type(err).__name__}: {err})") from None
        load_weights(estimator.model_, bundle.weights, path)
        estimator._load_extras(Path(path), config)
        estimator.metrics_, estimator.data_report_ = bundle.metrics, bundle.data_report
        estimator.history_, estimator.path_, estimator.bundle_format_ = bundle.history, str(path), bundle.format_version
        estimator.trained_with_ = config.get("mmfuse_version")
        return estimator


@dataclass
class FitSplits:
    """The labelled rows a fit learns from and validates on, before preprocessing."""

    train: pd.DataFrame
    valid: pd.DataFrame
    train_root: Path              # where the tables' relative file paths resolve
    valid_root: Path
    train_left_out: list[int]     # rows without a label
    valid_left_out: list[int]
    columns: list[str]            # the training table's columns, as read


def check_checkpoint_use(folder: str | Path | None, resume: bool, restart: bool) -> None:
    """Refuse to start over a checkpoint an interrupted fit left in ``folder``, unless ``resume`` continues it or
    ``restart`` discards it (not both)."""
    if resume and restart:
        raise ConfigError("resume and restart exclude each other: continue an interrupted fit or discard it")
    if folder is None:
        return
    folder = Path(folder)
    foreign = foreign_entries(folder)
    if foreign or (folder.exists() and not folder.is_dir()):
        held = f"holds {', '.join(repr(n) for n in foreign[:3])}{', ...' if len(foreign) > 3 else ''}" if foreign \
            else "is not a folder"
        raise ConfigError(f"{folder} exists and is not an mmfuse checkpoint folder (it {held}): mmfuse keeps an "
                          "interrupted fit's state there, so move it away or save the model elsewhere")
    if resume:
        return
    epoch, members = saved_epoch(folder), saved_members(folder)
    if epoch is None and not members:
        return
    saved = f"saved after epoch {epoch}" if epoch is not None else f"members saved: {', '.join(members)}"
    if not restart:
        raise ConfigError(f"{folder} holds an interrupted fit ({saved}): continue it with --resume "
                          "(resume=True), or discard it with --restart (restart=True)")
    log.warning(f"restart: discarded the interrupted fit in {folder} ({saved})")
    remove_checkpoints(folder)


def run_fingerprint(parts: dict[str, Any]) -> dict[str, str]:
    """Each part of what a resumed fit must share (``_resume_parts``) -> its SHA-256, so a refusal names the parts
    that changed."""
    return {name: hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
            for name, value in parts.items()}


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a table's column names and cells."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame.astype(str), index=True).to_numpy().tobytes())
    return digest.hexdigest()


def files_digest(frame: pd.DataFrame, columns: list[ColumnInfo], root: Path) -> str:
    """SHA-256 of the size and modification time of every file the table's file columns name (set cells: each
    element), so that a resumed fit notices a file that changed since (a missing one counts as missing)."""
    digest = hashlib.sha256()
    for col in columns:
        if col.modality == "ignore" or col.name not in frame.columns or not MODALITIES.get(col.modality).cell.file:
            continue
        sep = col.traits["set"].get("sep") if "set" in col.traits else None
        for value in frame[col.name]:
            try:
                elements = set_elements(value, root, sep) if "set" in col.traits else [] if is_empty(value) else [value]
            except (ValueError, OSError):
                elements = [str(value)]
            for element in elements:
                try:
                    info = resolve_path(element, root).stat()
                    digest.update(f"{element}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
                except (OSError, ValueError):
                    digest.update(f"{element}\0missing\n".encode())
    return digest.hexdigest()


def is_retrieval_bundle(path: str | Path) -> bool:
    """Whether a saved model folder holds a retrieval model (its config's task), without reading the weights."""
    return not is_labelled(read_bundle_config(path).get("task", {}).get("name"))
