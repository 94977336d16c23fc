"""``BaseEstimator``: ``fit``, ``save`` and ``load`` written once; ``Predictor`` and ``Retriever`` supply what differs.

Scikit-learn habits: ``__init__`` only stores its arguments, ``fit`` returns self, learned state ends in ``_``, and
using an estimator before ``fit`` or ``load`` raises ``NotFittedError``. The library never prints: messages go to
the ``mmfuse`` logger, long work reports to the ``progress`` callback (the CLI draws both).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator as SklearnEstimator
from torch import Tensor, nn

from ..config import ModelConfig, load_config, setting_overrides, with_finetuning
from ..core.columns import ColumnInfo
from ..core.devices import process_rank, resolve_device
from ..core.processor import Progress
from ..data.dataset import EncodedSplit, TableDataset, describe_report
from ..data.streaming import Streaming
from ..data.table import Table, read_table
from ..errors import ConfigError, DataError, NotFittedError
from ..nn.model import EncoderChoice, trainable_parameters
from ..pipeline import (POLICIES, InputPipeline, InputPlan, check_encoder_keys, input_traits, inputs_summary,
                        plan_inputs)
from ..plugins import plugin_modules
from ..portfolio import FitData, MemberStore, NetworkMember, NetworkPlan, PortfolioFit, TimeBudget
from ..registry import ENCODERS, FUSIONS, MODALITIES
from ..version import __version__
from .arguments import KeywordSettings, misplaced
from .folder import read_model, write_model
from .resume import check_checkpoint_use, files_digest, frame_digest, run_fingerprint
from .splits import FitSplits, read_splits
from .timing import Stopwatch, describe_stages, stage_seconds

log = logging.getLogger("mmfuse")
TableLike = "str | Path | pd.DataFrame | Table | TableFile"


class BaseEstimator(KeywordSettings, SklearnEstimator):
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
        if resume and world > 1:
            raise ConfigError("--resume is not supported with several devices yet: resume on one device")
        check_checkpoint_use(checkpoint_dir if rank == 0 else None, resume, restart)  # DDP: rank 0 saves
        self._apply_process_settings()
        splits = read_splits(self, train, y, valid, clock)
        with clock("columns"):  # detection, each input's encoder (the text probe included)
            self._learn_columns(splits, budget)
        train_set, valid_set, features = self._preprocess(splits, clock)
        checkpoints = None if checkpoint_dir is None else {
            "folder": Path(checkpoint_dir), "fingerprint": run_fingerprint(self._resume_parts(splits)),
            "resume": resume, "every_seconds": checkpoint_every}
        with clock("set-up"):
            self.model_ = self._seeded_model()
        data = FitData(train_set, valid_set, self.pipeline_.dataset, self.pipeline_.processors)
        refit = self.config_.portfolio.refit if self.config_.portfolio.refit is not None else valid is None
        fitting = self._fit_portfolio(data, budget, clock, callbacks, checkpoints, refit)
        self._record(fitting, valid_set, features, clock)
        return self

    def _fit_portfolio(self, data: FitData, budget: TimeBudget, clock: Stopwatch, callbacks: list | None,
                       checkpoints: dict[str, Any] | None, refit: bool) -> PortfolioFit:
        """Fit the portfolio (``checkpoints``: rank 0 keeps each member for a resume; ``refit``: see PortfolioCfg)."""
        network = self._network_member(self._network_plan(callbacks, checkpoints))
        cfg, (rank, world) = self.config_.portfolio, self._process_rank()
        store = MemberStore(checkpoints["folder"], checkpoints["fingerprint"], checkpoints["resume"]) \
            if checkpoints and rank == 0 else None
        fitting = PortfolioFit(self._member_names(), self.task_, budget, seed=self.config_.train.seed,
                               threads=torch.get_num_threads(), log=self._log, given={network.name: network},
                               store=store, rounds=cfg.rounds, calibrate=cfg.calibrate, refit=refit,
                               probe_epochs=cfg.probe_epochs, rank=rank, world=world)
        with clock("members"):
            self.portfolio_ = fitting.run(data)
        self.model_ = getattr(self.portfolio_.members.get(network.name), "model", self.model_)  # (refitted)
        for name in fitting.unread(data):
            columns = ", ".join(map(repr, self.plan_[name].columns))
            self._log(f"input {name!r} ({columns}): no member reads it (its processor gives no flat view and the "
                      "network did not train), so it counts for nothing", logging.WARNING)
        clock.move("members", "training", network.fit_seconds)
        if self.portfolio_.lone:
            clock.seconds.pop("members")
        return fitting

    def _member_names(self) -> list[str]:
        """The portfolio's members this fit trains (the network alone, unless a subclass holds a portfolio)."""
        return [NetworkMember.name]

    def _network_plan(self, callbacks: list | None, checkpoints: dict[str, Any] | None) -> NetworkPlan:
        """How the network trains in this fit (the config's settings; the trainer's callbacks and runtime)."""
        return NetworkPlan(self.config_.train, self._progress_callback(), list(callbacks or []), checkpoints,
                           "gpu" if self._device() == "cuda" else "cpu", logging.INFO if self.verbose else logging.DEBUG,
                           self.pipeline_.batch_rows(), self._seeded_model)

    def _seeded_model(self) -> nn.Module:  # the model as first built: the network's refit starts from it
        torch.manual_seed(self.config_.train.seed)  # weight init is part of the seeded run
        return self._build_model()

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

    def _record(self, fitting: PortfolioFit, valid_set: TableDataset, features: dict, clock: Stopwatch) -> None:
        """What the fit did: history, validation metrics (of the ensemble as validation chose it, before any refit
        learned from the validation rows), restored epoch (None: the network did not train), time per stage."""
        result = fitting.given[NetworkMember.name].result
        self.history_, self.global_rank_ = (result.history, result.global_rank) if result else ([], 0)
        self.fit_time_, self.trained_with_ = clock.total(), __version__
        outputs = fitting.valid_outputs  # the ensemble's as validation chose it (None: a lone network, as trained)
        valid = self._score(valid_set) if outputs is None else self.task_.metrics(valid_set.target, outputs, valid_set.weights())
        self.metrics_ = {"valid": valid, "epochs": len(self.history_),
                         "restored_epoch": result.restored_epoch if result else None,
                         "stopped": result.stopped if result else None,
                         "fit_seconds": round(self.fit_time_, 2), "parameters": trainable_parameters(self.model_),
                         "processes": result.processes if result else 1}
        if any(features.values()):
            self.metrics_["features"] = features  # split -> input -> computed / from the cache / seconds
        self.metrics_["stages"] = stage_seconds(clock, features, self.history_)
        if not self.portfolio_.lone:  # weights, validation ECE before / after the temperatures
            self.metrics_["ensemble"] = {"weights": self.portfolio_.weights, **self.portfolio_.calibration}
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
        self.path_ = str(write_model(self, path))
        return Path(self.path_)

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
        return read_model(cls, path, verbose, cache_dir, plugins)
