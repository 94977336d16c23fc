"""The input pipeline: which processor each model input gets, fitted on train, tables in, stored tensors out.

    pipeline = InputPipeline.plan(columns, cfg)            # column -> input -> encoder -> the processor it names
    pipeline.fit(train_frame, root)                        # on the training split only
    split = pipeline.transform(frame, root, "mask", "valid")   # EncodedSplit: tensors, presence, row ids, report
    InputPipeline.from_state(pipeline.state_dict(), format_version=2)

Inputs: each column of an ungrouped modality (text, image, audio, sequence) is its own input; the columns of a
grouped modality (numeric and categorical) share one input named after its kind (``tabular``). A column's encoder
(per column, else per input kind, else the plugin's default) may name its own processor (a pretrained encoder's
tokenizer or image scaling); otherwise the modality's processor reads the config's ``preprocess.<kind>`` settings.

``transform`` is row-wise, so it can be called per batch of rows as well as per split. Large inputs (images, audio,
sequences) may be streamed instead of held in memory (``use_streaming``, ``data/streaming.py``).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .config import ModelConfig
from .core.columns import ColumnInfo
from .core.processor import EMPTY, UNREADABLE, Corruption, Problem, Processor, Progress
from .data.dataset import EncodedSplit, TableDataset
from .data.streaming import Streaming, should_stream, stream_transform
from .errors import DataError
from .registry import ENCODERS, MODALITIES, PROCESSORS

POLICIES = ("error", "skip", "mask")


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
    def plan(cls, columns: list[ColumnInfo], cfg: ModelConfig, cache_dir: str | Path | None = None,
             progress: Progress | None = None) -> "InputPipeline":
        """Unfitted processors for the detected columns under a model config."""
        groups: dict[str, list[ColumnInfo]] = {}
        kinds: dict[str, str] = {}
        for col in sorted((c for c in columns if c.modality != "ignore"), key=lambda c: MODALITIES.get(c.modality).grouped):
            name, kind = input_of(col)
            if name in kinds and not (name == kind and kinds[name] == kind):
                raise DataError(f"a column may not be named {name!r} when the table has {kind} columns "
                                f"({col.modality}); rename it")
            groups.setdefault(name, []).append(col)
            kinds[name] = kind
        processors = {}
        for name, cols in groups.items():
            encoder = cfg.encoder_for(name, kinds[name])
            meta = ENCODERS.meta(encoder.name)
            if meta.get("processor"):  # the encoder brings its own (a pretrained backbone's tokenizer or scaling)
                proc_cls = PROCESSORS.get(meta["processor"])
                shared = {k: v for k, v in cfg.preprocess.get(kinds[name], {}).items() if k in proc_cls.shared_settings}
                settings = {**shared, **meta.get("processor_settings", {}), **encoder.params}
            else:
                proc_cls = PROCESSORS.get(MODALITIES.get(cols[0].modality).processor)
                settings = cfg.preprocess.get(kinds[name], {})
            processors[name] = proc_cls.for_input(cols, settings)
        return cls(processors, progress).use_cache(cache_dir)

    def fit(self, frame: pd.DataFrame, root: Path) -> "InputPipeline":
        for proc in self.processors.values():
            proc.fit(proc.input_values(frame), root, self.progress)
        return self

    def transform(self, frame: pd.DataFrame, root: Path, on_bad_row: str, split: str) -> EncodedSplit:
        """Transform every input of ``frame`` and apply ``on_bad_row`` (error | skip | mask) to unreadable values."""
        stored, present, problems, streamed = {}, {}, [], {}
        for name, proc in self.processors.items():
            values = proc.input_values(frame)
            if should_stream(proc, values, root, self.streaming):
                out, streamed[name] = stream_transform(proc, values, root, self.streaming, self.progress)
            else:
                out = proc.transform(values, root, self.progress)
            stored[name], present[name] = out.values, out.present
            problems += out.problems
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
        report: dict[str, Any] = {"rows": len(frame), "used": len(keep), "on_bad_row": on_bad_row,
                                  "skipped": [{"row": int(row_ids[p.row]), "column": p.column, "reason": p.detail}
                                              for p in unreadable if on_bad_row == "skip"],
                                  "columns": defaultdict(lambda: defaultdict(lambda: {"count": 0, "rows": []}))}
        for p in problems:
            if p.row in skip:
                continue
            kind = "masked" if p.kind == UNREADABLE else p.kind
            entry = report["columns"][p.column][kind]
            entry["count"] += 1
            entry["rows"].append(int(row_ids[p.row]))
            entry.setdefault("first", p.detail)
        report["columns"] = {c: dict(kinds) for c, kinds in report["columns"].items()}
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
    def input_specs(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Input name -> (input kind, what its encoder must know: vocabulary size, channels, ...)."""
        return {name: (proc.modality, proc.encoder_kwargs()) for name, proc in self.processors.items()}

    def corruptions(self) -> dict[str, dict[str, Corruption]]:
        """Input name -> corruption name -> function, for the robustness analysis."""
        return {name: proc.corruptions() for name, proc in self.processors.items()}

    def extraction(self) -> dict[str, dict[str, float]]:
        """What the last transform of each cached-feature input did (counts and seconds)."""
        stats = {n: p.extraction() for n, p in self.processors.items()}
        return {n: e for n, e in stats.items() if e}

    # --- state ----------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, dict[str, Any]]:
        return {name: proc.state_dict() for name, proc in self.processors.items()}

    @classmethod
    def from_state(cls, states: dict[str, dict[str, Any]], format_version: int, cache_dir: str | Path | None = None,
                   progress: Progress | None = None) -> "InputPipeline":
        """Fitted processors from a bundle's ``processors.json`` (format 1 states are converted first)."""
        if format_version == 1:
            states = {n: PROCESSORS.get(s["kind"]).upgrade_format1(s) for n, s in states.items()}
        return cls({name: Processor.from_state(state) for name, state in states.items()}, progress).use_cache(cache_dir)


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
