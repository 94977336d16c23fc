"""The input pipeline: which processor each model input gets, fitted on train, tables in, stored tensors out.

    plans = plan_inputs(columns, cfg)                      # column -> input -> encoder -> processor, decided once
    pipeline = InputPipeline.plan(plans, columns)
    pipeline.fit(train_frame, root)                        # on the training split only
    split = pipeline.transform(frame, root, "mask", "valid")   # EncodedSplit: tensors, presence, row ids, report
    InputPipeline.from_state(pipeline.state_dict())

Inputs: each column of an ungrouped modality (text, image, audio, sequence) is its own input; the columns of a
grouped modality (numeric and categorical) share one input named after its kind (``tabular``). A column's encoder
(per column, else per input kind, else the plugin's default) may name its own processor (a pretrained encoder's
tokenizer or image scaling); otherwise the modality's processor reads the config's ``preprocess.<kind>`` settings.

``transform`` is row-wise, so it can be called per batch of rows as well as per split. Large inputs (images, audio,
sequences) may be streamed instead of held in memory (``use_streaming``, ``data/streaming.py``).

A string cell longer than its processor's ``max_chars`` (text: ``MAX_TEXT_CHARS``) is unreadable before the
processor sees it (the bad-row policy applies).
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .config import ModelConfig, input_kinds
from .core.columns import ColumnInfo
from .core.processor import EMPTY, UNREADABLE, Corruption, Problem, Processor, Progress
from .core.set_processor import SetProcessor, rows_holding
from .data.dataset import ColumnProblems, EncodedSplit, SplitReport, TableDataset
from .data.streaming import Streaming, should_stream, stream_transform
from .errors import ConfigError, DataError
from .nn.model import EncoderChoice
from .registry import ENCODERS, MODALITIES, PROCESSORS

POLICIES = ("error", "skip", "mask")


def without_oversized_cells(proc: Processor, values: Any) -> tuple[Any, list[Problem]]:
    """An input's cells with the strings longer than its processor's ``max_chars`` emptied, and an unreadable
    problem for each."""
    if proc.max_chars is None or not isinstance(values, pd.Series):
        return values, []
    lengths = values.map(lambda v: len(v) if isinstance(v, str) else 0).to_numpy()
    rows = np.flatnonzero(lengths > proc.max_chars)
    if not len(rows):
        return values, []
    problems = [Problem(int(i), str(values.name), UNREADABLE, f"a text of {lengths[i]:,} characters, above the "
                        f"limit of {proc.max_chars:,}") for i in rows]
    values = values.copy()
    values.iloc[rows] = None
    return values, problems


def input_of(column: ColumnInfo) -> tuple[str, str]:
    """(model input name, input kind) a column feeds: its own name, or its kind's for a grouped modality."""
    spec = MODALITIES.get(column.modality)
    return (spec.input if spec.grouped else column.name), spec.input


def input_traits(columns: list[ColumnInfo]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Model input name -> (input kind, its column's traits) for the config's encoder rules; a grouped input (the
    tabular one, many columns) has no traits."""
    inputs = {}
    for col in columns:
        if col.modality != "ignore":
            name, kind = input_of(col)
            inputs[name] = (kind, {} if MODALITIES.get(col.modality).grouped else col.traits)
    return inputs


@dataclass(frozen=True)
class InputPlan:
    """One model input as ``plan_inputs`` decided it: the columns it reads, the encoder that reads it (with its
    constructor params) and the processor that prepares it (with its settings), and why that encoder. Saved with
    the model (bundle format 4 on), read by the pipeline and the model builders."""

    name: str                           # the model input: a column, or a grouped modality's kind (``tabular``)
    kind: str                           # its input kind: text, image, audio, sequence, tabular, a plugin's
    columns: list[str]
    encoder: str                        # registry name
    encoder_params: dict[str, Any]      # the encoder's constructor params from the config
    processor: str                      # processor kind
    processor_settings: dict[str, Any]  # the processor's constructor settings
    chosen_by: str                      # a preset rule, a column or kind setting, or the plugin default

    def choice(self) -> EncoderChoice:
        return EncoderChoice(self.encoder, self.encoder_params)


def inputs_summary(columns: list[ColumnInfo], plans: dict[str, InputPlan]) -> list[dict[str, Any]]:
    """Each column with its modality, why it was detected, its encoder and the rule that picked it (if one)."""
    plan_of = {column: plan for plan in plans.values() for column in plan.columns}
    inputs = []
    for col in columns:
        encoder, why = "-", ""
        if col.modality != "ignore" and col.name in plan_of:
            plan = plan_of[col.name]
            encoder = plan.encoder + (" + n-grams" if plan.encoder_params.get("ngrams") is not None else "")
            why = plan.chosen_by if plan.chosen_by.startswith("rule") else ""
        inputs.append({"column": col.name, "modality": col.modality, "encoder": encoder, "reason": col.reason,
                       "chosen_by": why})
    return inputs


def check_encoder_keys(keys: Iterable[str], columns: list[ColumnInfo], table_columns: list[str]) -> list[str]:
    """Each key of a user's encoder choices (``--encoder KEY=NAME``) names a column that feeds its own input (else a
    ``DataError`` naming it) or an input kind; returns a warning for each kind the table has no input of."""
    inputs = input_traits(columns)  # input name -> (kind, traits)
    kinds = input_kinds()
    warnings = []
    for key in keys:
        if key in kinds:
            if key not in {kind for kind, _ in inputs.values()}:
                warnings.append(f"--encoder {key}=...: the table has no {key} input; the setting is not used")
            continue
        if key in inputs:
            continue
        column = next((c for c in columns if c.name == key), None)
        if column is None:
            raise DataError(f"--encoder {key}=...: {key!r} is neither an input column nor an input kind; "
                            f"columns: {', '.join(map(str, table_columns))}; kinds: {', '.join(kinds)}")
        if column.modality == "ignore":
            raise DataError(f"--encoder {key}=...: column {key!r} is not used ({column.reason})")
        kind = input_of(column)[1]
        raise DataError(f"--encoder {key}=...: column {key!r} is {column.modality} and shares the {kind} input "
                        f"with the table's other {kind} columns: use --encoder {kind}=NAME")
    return warnings


def plan_inputs(columns: list[ColumnInfo], cfg: ModelConfig) -> dict[str, InputPlan]:
    """The one place where each column's input, encoder and processor are chosen: input name -> plan.

    The encoder: a preset rule matching the column's traits, else a per-column setting, else one for its kind,
    else the plugin's default. Its config params go to the encoder's constructor, and those a processor takes to
    the processor (both, when both take one, e.g. ``max_length``); a param neither takes is a config error. The
    processor: the one the encoder names (a pretrained backbone's tokenizer or scaling: its registration's
    settings, the params, and the ``preprocess.<kind>`` settings it shares), else the modality's, with the
    config's ``preprocess.<kind>`` section.
    """
    groups: dict[str, list[ColumnInfo]] = {}
    kinds: dict[str, str] = {}
    for col in sorted((c for c in columns if c.modality != "ignore"), key=lambda c: MODALITIES.get(c.modality).grouped):
        name, kind = input_of(col)
        if name in kinds and not (name == kind and kinds[name] == kind):
            raise DataError(f"a column may not be named {name!r} when the table has {kind} columns "
                            f"({col.modality}); rename it")
        groups.setdefault(name, []).append(col)
        kinds[name] = kind
    return {name: _plan_input(name, kinds[name], cols, cfg) for name, cols in groups.items()}


def _plan_input(name: str, kind: str, cols: list[ColumnInfo], cfg: ModelConfig) -> InputPlan:
    traits = {} if MODALITIES.get(cols[0].modality).grouped else cols[0].traits
    encoder, why = cfg.choose_encoder(name, kind, traits)
    meta = ENCODERS.meta(encoder.name)
    processor = meta.get("processor") or MODALITIES.get(cols[0].modality).processor
    proc_takes = set(inspect.signature(PROCESSORS.get(processor)).parameters)
    enc_takes = set(inspect.signature(ENCODERS.get(encoder.name)).parameters)
    unknown = sorted(set(encoder.params) - proc_takes - enc_takes)
    if unknown:
        raise ConfigError(f"encoder {encoder.name!r} for {name!r}: unknown params {', '.join(unknown)}; check its "
                          "params in the config")
    if meta.get("processor"):  # the encoder brings its own processor
        shared = PROCESSORS.get(processor).shared_settings
        offered = {**{k: v for k, v in cfg.preprocess.get(kind, {}).items() if k in shared},
                   **meta.get("processor_settings", {}), **encoder.params}
    else:
        offered = cfg.preprocess.get(kind, {})
    settings = {k: v for k, v in offered.items() if k in proc_takes}
    if "set" in traits:  # a set per cell: the element's processor, element by element (core/set_processor.py)
        processor, settings = SetProcessor.kind, {"element": processor, "element_settings": settings,
                                                  "sep": traits["set"].get("sep"), "pooling": cfg.set_pooling}
    return InputPlan(name, kind, [c.name for c in cols], encoder.name,
                     {k: v for k, v in encoder.params.items() if k in enc_takes}, processor, settings, why)


class InputPipeline:
    """Processors keyed by model input name, with the bad-row policy applied when transforming a table."""

    def __init__(self, processors: dict[str, Processor], progress: Progress | None = None,
                 streaming: Streaming | None = None):
        self.processors, self.progress, self.streaming = processors, progress, streaming or Streaming()

    def use_device(self, device: str) -> "InputPipeline":
        """Where frozen backbones run while transforming ("cpu" or "cuda"; a runtime setting)."""
        for proc in self.processors.values():
            proc.use_device(device)
        return self

    def use_progress(self, progress: Progress | None) -> "InputPipeline":
        """Where long transforms report (reading files, computing features; a runtime setting)."""
        self.progress = progress
        return self

    def use_streaming(self, streaming: Streaming) -> "InputPipeline":
        """How ``transform`` holds large inputs: in memory, on disk, or decoded per batch (a runtime setting)."""
        self.streaming = streaming
        return self

    def use_cache(self, folder: str | Path | None, write: bool = True) -> "InputPipeline":
        """Where processors that run a frozen backbone cache its features (None: the default folder); ``write``
        False reads the cache without adding to it."""
        for proc in self.processors.values():
            proc.use_cache(None if folder is None else str(folder), write)
        return self

    @classmethod
    def plan(cls, plans: dict[str, "InputPlan"], columns: list[ColumnInfo],
             cache_dir: str | Path | None = None) -> "InputPipeline":
        """Unfitted processors for the inputs of a plan (``plan_inputs``)."""
        by_name = {c.name: c for c in columns}
        processors = {name: PROCESSORS.get(p.processor).for_input([by_name[c] for c in p.columns], p.processor_settings)
                      for name, p in plans.items()}
        return cls(processors).use_cache(cache_dir)

    def fit(self, frame: pd.DataFrame, root: Path) -> "InputPipeline":
        for proc in self.processors.values():
            proc.fit(without_oversized_cells(proc, proc.input_values(frame))[0], root, self.progress)
        return self

    def transform(self, frame: pd.DataFrame, root: Path, on_bad_row: str, split: str) -> EncodedSplit:
        """Transform every input of ``frame`` and apply ``on_bad_row`` (error | skip | mask) to unreadable values."""
        stored, present, problems, streamed = {}, {}, [], {}
        for name, proc in self.processors.items():
            values, oversized = without_oversized_cells(proc, proc.input_values(frame))
            if should_stream(proc, values, root, self.streaming):
                out, streamed[name] = stream_transform(proc, values, root, self.streaming, self.progress)
            else:
                out = proc.transform(values, root, self.progress)
            stored[name], present[name] = out.values, out.present
            emptied = {p.row for p in oversized}
            problems += oversized + [p for p in out.problems if not (p.row in emptied and p.kind == EMPTY)]
        row_ids = frame.index.to_numpy()
        unreadable = [p for p in problems if p.kind == UNREADABLE]
        _fail_if_column_unreadable(unreadable, problems, len(frame), root, split)
        if unreadable and on_bad_row == "error":
            p = unreadable[0]
            more = f" ({len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
            raise DataError(f"{split} row {row_ids[p.row]}, column {p.column!r}: {p.detail}{more}; "
                            "use --on-bad-row skip or mask to continue without it")
        skip = sorted({p.row for p in unreadable}) if on_bad_row == "skip" else []
        keep = np.setdiff1d(np.arange(len(frame)), skip)
        columns: dict[str, dict[str, ColumnProblems]] = defaultdict(dict)
        for p in problems:
            if p.row in skip:
                continue
            kind = "masked" if p.kind == UNREADABLE else p.kind
            entry = columns[p.column].setdefault(kind, {"count": 0, "rows": [], "first": p.detail, "values": 0})
            entry["values"] += 1  # a set cell may hold several such values: rows are counted once
            if not entry["rows"] or entry["rows"][-1] != int(row_ids[p.row]):
                entry["rows"].append(int(row_ids[p.row]))
                entry["count"] += 1
        report = SplitReport(rows=len(frame), used=len(keep), on_bad_row=on_bad_row,
                             skipped=[{"row": int(row_ids[p.row]), "column": p.column, "reason": p.detail}
                                      for p in unreadable if on_bad_row == "skip"], columns=dict(columns))
        if streamed:
            report["streamed"] = streamed  # input -> cache hit / filled / off, MB on disk, seconds
        return EncodedSplit(stored, present, row_ids, report).take(torch.as_tensor(keep, dtype=torch.long))

    def dataset(self, split: EncodedSplit, target: Tensor | None = None, train: bool = False) -> TableDataset:
        """Prepared batches of a transformed split (augmented when ``train``)."""
        return TableDataset(split, self.processors, target, train, self.streaming.workers)

    def select(self, names: list[str]) -> "InputPipeline":
        """A pipeline of some inputs only (sharing the fitted processors)."""
        return InputPipeline({n: self.processors[n] for n in names}, self.progress, self.streaming)

    # --- what the layers above ask -------------------------------------------------------------------------------
    def corruptions(self) -> dict[str, dict[str, Corruption]]:
        """Input name -> corruption name -> function, for the robustness analysis."""
        return {name: proc.corruptions() for name, proc in self.processors.items()}

    def set_sizes(self) -> dict[str, int]:
        """Set inputs (several values per cell) -> the most elements a row of them holds."""
        return {name: proc.elements_ for name, proc in self.processors.items() if isinstance(proc, SetProcessor)}

    def batch_rows(self, values: int = 256) -> int:
        """Rows per inference batch that hold about ``values`` values of each input: ``values`` rows, fewer when a
        set input stores several elements a row (a set of 4 images: 64 rows, so 256 images go through its encoder
        at once, not 1,024)."""
        return min((rows_holding(proc, values) for proc in self.processors.values()), default=values)

    def extraction(self) -> dict[str, dict[str, float]]:
        """What the last transform of each cached-feature input did (counts and seconds)."""
        stats = {n: p.extraction() for n, p in self.processors.items()}
        return {n: e for n, e in stats.items() if e}

    # --- state ----------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, dict[str, Any]]:
        return {name: proc.state_dict() for name, proc in self.processors.items()}

    @classmethod
    def from_state(cls, states: dict[str, dict[str, Any]], cache_dir: str | Path | None = None) -> "InputPipeline":
        """Fitted processors from a bundle's ``processors.json`` (an older format's: ``estimators.migrations``)."""
        return cls({name: Processor.from_state(state) for name, state in states.items()}).use_cache(cache_dir)


def _fail_if_column_unreadable(unreadable: list[Problem], problems: list[Problem], n_rows: int, root: Path,
                               split: str) -> None:
    """A column none of whose non-empty values can be read is a path or type mistake, not bad rows: stop."""
    by_column: dict[str, list[Problem]] = defaultdict(list)
    for p in unreadable:
        by_column[p.column].append(p)
    for column, bad in by_column.items():
        empty = sum(1 for p in problems if p.column == column and p.kind == EMPTY)
        if len(bad) >= 3 and len(bad) + empty == n_rows:
            raise DataError(f"{split}: column {column!r}: not one of {len(bad)} values could be read "
                            f"(first: {bad[0].detail}); relative paths are resolved against the table's folder, "
                            f"here {root} (for a DataFrame: the working directory)")
