"""Options and arguments the commands share, and their parsing: COLUMN=VALUE pairs, a table with its encoding, the
runtime options, and help texts that list what the registries hold (read when the help is shown, so that
``mmfuse --help`` starts without importing torch)."""

from __future__ import annotations

import math
from typing import Any, Callable

import click

SEEDS = click.IntRange(0, 2**32 - 1)  # what the random number generators take


def check_seeds(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A comma-separated list of seeds, each checked as ``SEEDS`` (the value is kept as given)."""
    for seed in value.split(","):
        SEEDS.convert(seed.strip(), param, ctx)
    return value


class FiniteFloat(click.FloatRange):
    """A ``FloatRange`` that refuses nan and inf: nan compares false to every bound and passes any range, inf passes
    a range with no upper bound."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class ListedOption(click.Option):
    """An option whose help ends with ``listing()`` (names read from the registries), computed when shown."""

    def __init__(self, *args: Any, listing: Callable[[], str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.listing, self.base_help = listing, self.help or ""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = f"{self.base_help} {self.listing()}"
        return super().get_help_record(ctx)


class RegistryChoice(click.Choice):
    """A ``click.Choice`` whose names come from ``names()`` (a registry's), read when a value is checked or the help
    is shown, so that ``mmfuse --help`` imports nothing."""

    def __init__(self, names: Callable[[], list[str]]):
        self.names = names
        super().__init__([])

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self.names())

    @choices.setter
    def choices(self, given: Any) -> None:
        """``click.Choice.__init__`` sets the names; these are read from ``names()`` whenever needed."""


def task_names() -> list[str]:
    from ..registry import TASKS
    from .. import tasks  # noqa: F401  (registers the tasks)

    return ["auto", *TASKS.names()]


def list_presets() -> str:
    from ..config import list_presets as presets

    return f"Presets: {', '.join(presets())}."


def list_metrics() -> str:
    from ..tasks import metric_names

    return "Metrics: " + "; ".join(f"{task}: {', '.join(metric_names(task))}"
                                   for task in ("binary", "multiclass", "multilabel", "regression")) + "."


def list_members() -> str:
    from .. import estimators  # noqa: F401  (registers the learners)
    from ..config import member_names

    return f"Members: {', '.join(member_names())}."


def names(value: str | None) -> list[str] | None:
    """A comma-separated option as a list of names (None: not given)."""
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def list_fusions() -> str:
    from .. import estimators  # noqa: F401  (registers the built-in plugins and the installed ones)
    from ..registry import list_fusions as fusions

    return f"Methods: {', '.join(fusions())}."


def list_encoders() -> str:
    from .. import estimators  # noqa: F401
    from ..config import input_kinds
    from ..registry import list_encoders as encoders

    return "Encoders: " + "; ".join(f"{kind}: {', '.join(encoders(kind))}" for kind in input_kinds()) + "."


def list_modalities() -> str:
    from .. import estimators  # noqa: F401
    from ..registry import MODALITIES

    return f"MODALITY: {', '.join([*MODALITIES.names(), 'ignore'])}."


encoding_option = click.option("--encoding", help="Text encoding of CSV / TSV / JSONL tables, e.g. latin-1 "
                                                   "[default: UTF-8, with or without a BOM].")
threads_option = click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch.")
cache_option = click.option("--cache-dir", type=click.Path(file_okay=False),
                            help="Feature cache of frozen pretrained encoders [default: ~/.cache/mmfuse/features].")
bad_row_override = click.option("--on-bad-row", type=click.Choice(["error", "skip", "mask"]),
                                help="Override the model's policy for unreadable values.")


def runtime_options(command: Callable) -> Callable:
    """--device and --workers, for fit and for the commands that run a saved model (unset: the estimator's
    defaults, 0 workers and auto)."""
    command = click.option("--workers", type=click.IntRange(min=0),
                           help="DataLoader worker processes that decode and prepare batches (0: the main "
                                "process) [default: 0].")(command)
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]),
                        help="Where features are extracted and the model trains and predicts [default: auto, a "
                             "CUDA GPU if present].")(command)


def source(path: str | None, encoding: str | None) -> Any:
    """A table argument as the estimators read it: the path, or the path with its encoding."""
    from ..data.table import TableFile

    return TableFile(path, encoding) if path and encoding else path


def write_csv(frame: Any, path: Path) -> None:
    """``frame`` as a UTF-8 CSV at ``path``: missing folders created, written whole or not at all; text UTF-8 cannot
    store (a lone surrogate from a JSON table) is written as backslash escapes, and said."""
    from ..errors import DataError
    from ..io.staging import staged_file
    from .console import console

    try:
        with staged_file(path) as staging:
            try:
                frame.to_csv(staging, index=False)
            except UnicodeEncodeError as err:
                frame.to_csv(staging, index=False, errors="backslashreplace")
                console.print(f"warning: {path}: {err.object[err.start:err.end]!r} and any other text UTF-8 cannot "
                              f"store ({err.reason}) written as backslash escapes")
    except OSError as err:
        raise DataError(f"cannot write {path}: {err.strerror or err}") from None


def pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    """``("a=gru", ...)`` -> ``{"a": "gru"}``; a malformed item is a usage error naming ``option``."""
    parsed = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise click.BadParameter(f"expected COLUMN=VALUE, got {item!r}", param_hint=option)
        parsed[key] = value
    return parsed


def load_model(model: str, on_bad_row: str | None = None, threads: int | None = None, verbose: bool = True,
               cache_dir: str | None = None, device: str | None = None, workers: int | None = None,
               progress: Any = None) -> Any:
    """A saved model (a Predictor or a Retriever) with the command's runtime settings applied."""
    import torch

    from ..estimators import load

    if threads:
        torch.set_num_threads(threads)
    estimator = load(model, verbose=verbose, cache_dir=cache_dir).set_runtime(device, workers, progress=progress)
    return estimator.set_params(on_bad_row=on_bad_row) if on_bad_row else estimator
