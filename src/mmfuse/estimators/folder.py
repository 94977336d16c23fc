"""A fitted estimator's model folder: what ``save`` writes (config, processors, weights, figures, plots and what a
subclass adds, sealed by checksums: ``io.bundle``) and what ``load`` rebuilds from it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable

from ..config import validate_config
from ..core.columns import ColumnInfo
from ..errors import BundleError, ConfigError
from ..io.bundle import damaged, load_bundle, load_weights, save_bundle
from ..io.members import read_members, write_members
from ..pipeline import InputPipeline
from ..plots import plot_learning_curves
from ..plugins import require_plugins
from ..portfolio import NetworkMember, Portfolio
from ..tasks import is_labelled, task_from_state
from .migrations import input_plans, processor_states


def write_model(estimator: Any, path: str | Path) -> Path:
    """Save a fitted estimator's model folder at ``path``; returns it."""
    e = estimator
    config = {**e._bundle_fields(), "on_bad_row": e.on_bad_row, "task": e.task_.state_dict(),
              "columns": [vars(c) for c in e.columns_], "model": e.config_.model_dump(mode="json"),
              "inputs": [asdict(p) for p in e.plan_.values()], "plugins": e._plugin_modules()}

    def extras(folder: Path) -> None:
        if e.history_:
            metric, ensemble = e.task_.primary_metric, not e.portfolio_.lone
            plot_learning_curves(e.history_, folder / "learning_curves.png", metric, e.metrics_.get("restored_epoch"),
                                 e.metrics_["valid"].get(metric) if ensemble else None,
                                 e.portfolio_.weights.get(NetworkMember.name, 0.0) if ensemble else None)
        if not e.portfolio_.lone:
            write_members(folder, *e.portfolio_.state())

    members = {} if e.portfolio_.lone else {"members": e.portfolio_.fitted()}
    return save_bundle(path, {**config, **members}, e.pipeline_.state_dict(), e.model_.state_dict(), e.metrics_,
                       e.data_report_, e.history_, extras)


def read_model(cls: type, path: str | Path, verbose: bool, cache_dir: str | Path | None,
               plugins: Iterable[str]) -> Any:
    """The ``cls`` estimator a model folder holds (see ``BaseEstimator.load``)."""
    bundle = load_bundle(path)
    config = bundle.config
    require_plugins(config.get("plugins", []), str(path), plugins)
    if is_labelled(config.get("task", {}).get("name")) == cls.is_retrieval:
        other = "a retrieval model: load it with mmfuse.Retriever.load" if not cls.is_retrieval else \
            "not a retrieval model: load it with mmfuse.Predictor.load"
        raise BundleError(f"{path} is {other} or mmfuse.load")
    try:
        estimator = _rebuilt(cls, bundle, path, verbose, cache_dir)
    except ConfigError as err:
        raise damaged(Path(path), f"{err} (a model that uses a plugin loads after the plugin is imported: "
                                  "--plugin MODULE, or import it first)") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:  # fields missing or mistyped
        raise damaged(Path(path), f"config.json or processors.json does not describe a model this mmfuse can "
                                  f"build ({type(err).__name__}: {err})") from None
    load_weights(estimator.model_, bundle.weights, path)
    estimator.portfolio_ = _portfolio(estimator, Path(path), config)
    estimator.metrics_, estimator.data_report_ = bundle.metrics, bundle.data_report
    estimator.history_, estimator.path_, estimator.bundle_format_ = bundle.history, str(path), bundle.format_version
    estimator.trained_with_ = config.get("mmfuse_version")
    return estimator


def _portfolio(estimator: Any, folder: Path, config: dict[str, Any]) -> Portfolio:
    """A saved portfolio (its members in portfolio.json and .safetensors, the network in the model's weights), or the
    network alone (a folder whose config names no members)."""
    network = estimator._network_member()
    if "members" not in config:
        return Portfolio.alone(network.name, network)
    try:
        return Portfolio.from_state(*read_members(folder), apart={network.name: network})
    except (KeyError, TypeError, ValueError) as err:
        raise damaged(folder, f"portfolio.json does not describe this mmfuse's members ({type(err).__name__}: "
                              f"{err})") from None


def _rebuilt(cls: type, bundle: Any, path: str | Path, verbose: bool, cache_dir: str | Path | None) -> Any:
    """The estimator, its config, task, pipeline, columns, plan and (untrained) model from a bundle's files."""
    config = bundle.config
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
    return estimator
