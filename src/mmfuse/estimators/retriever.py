"""``Retriever``: a two-tower retrieval model (image-text, audio-text, ...) trained with CLIP's symmetric InfoNCE.

    r = Retriever(query="caption", target="image").fit("pairs.csv", valid="valid.csv")
    r.evaluate("test.csv")                    # Recall@1/5/10, median rank, MRR in both directions
    r.embed_values("caption", ["a red heart"])  # (1, D) unit vectors
    r.zero_shot("test.csv", label="category")  # class names as text prompts

Each row of the training table is a matching (query, target) pair; the other rows of a batch are the negatives.
Rows of a pair table where either side is missing or unreadable cannot be used as pairs: they are left out and
reported. Each tower is the column's encoder (any registered one; pretrained ones frozen with cached features by
default) plus a linear projection to the shared space when its width differs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..core.columns import ColumnInfo
from ..core.processor import Progress
from ..data.dataset import EncodedSplit, TableDataset, make_loader, row_accounting
from ..data.detect import detect_columns
from ..data.table import read_table
from ..errors import ConfigError, DataError
from ..nn.two_tower import TwoTowerModel, build_two_tower
from ..pipeline import InputPipeline
from ..registry import MODALITIES
from ..tasks.retrieval import RetrievalTask, retrieval_metrics
from .base import BaseEstimator, TableLike


def tower_modalities() -> list[str]:
    """The modalities a tower can read: each registered one whose columns are inputs of their own (not grouped
    into one input, as numbers and categories are)."""
    return [name for name in MODALITIES.names() if not MODALITIES.get(name).grouped]


class Retriever(BaseEstimator):
    """Train, evaluate, embed with, save and load a two-tower retrieval model over two columns of a pair table.

    Args:
        query, target: the two columns (text, image, audio or sequence), e.g. ``caption`` and ``image``.
        preset, config, encoders, column_types: as for ``Predictor`` (preset ``retrieval``: frozen MiniLM text
            and EfficientNet-Lite0 image towers, the text tower locked).
        finetune: train pretrained backbones too; cache_dir: where frozen features are cached.
        on_bad_row: error, or leave out (``skip`` / ``mask``: the same for pairs) rows with an unreadable value.
        seed, batch_size, lr, max_epochs, time_limit, threads: override the preset's training settings.
        progress, verbose, devices, strategy, num_nodes, stream, sample_cache, workers, device: see
            ``BaseEstimator``.
    """

    default_preset, is_retrieval = "retrieval", True

    def __init__(self, *, query: str, target: str, preset: str = "retrieval",
                 config: str | Path | dict | None = None, encoders: dict[str, str] | None = None,
                 column_types: dict[str, str] | None = None, finetune: bool = False,
                 cache_dir: str | Path | None = None, on_bad_row: str = "skip", seed: int | None = None,
                 batch_size: int | None = None, lr: float | None = None, max_epochs: int | None = None,
                 time_limit: float | None = None, threads: int | None = None, progress: Progress | None = None,
                 verbose: bool = True, devices: int | None = None, strategy: str | None = None,
                 num_nodes: int | None = None, stream: str = "auto", sample_cache: bool = True, workers: int = 0,
                 device: str = "auto"):
        self._keep_settings(locals())

    # --- what differs from the base -----------------------------------------------------------------------------
    def _usable_rows(self, frame: pd.DataFrame, split: str) -> tuple[pd.DataFrame, list[int]]:
        if self.query == self.target:
            raise ConfigError(f"query and target must be two different columns, both are {self.query!r}")
        for col in (self.query, self.target):
            if col not in frame.columns:
                raise DataError(f"{split}: column {col!r} not found; columns are: {', '.join(map(str, frame.columns))}")
        return frame[[self.query, self.target]], []

    def _make_task(self, frame: pd.DataFrame) -> RetrievalTask:
        self._log(f"task: retrieval {self.query} <-> {self.target} (rows are pairs)")
        return RetrievalTask()

    def _detect(self, frame: pd.DataFrame, root: Path) -> list[ColumnInfo]:
        columns = detect_columns(frame, [], root, self.column_types)
        towers = tower_modalities()
        for col in columns:
            if col.modality not in towers:
                raise DataError(f"column {col.name!r} is {col.modality}: retrieval pairs {', '.join(towers)} "
                                "columns (set its type with --column-type)")
        return columns

    def _encode(self, frame: pd.DataFrame, root: Path, split: str, left_out: list[int] = (),
                pipeline: InputPipeline | None = None, on_bad_row: str | None = None) -> EncodedSplit:
        """Encoded rows; for the full pipeline, only those where both sides are present (the others are reported
        and left out: a pair needs both)."""
        policy = "error" if self.on_bad_row == "error" else "mask"
        encoded = super()._encode(frame, root, split, left_out, pipeline, policy)
        if pipeline is not None:
            return encoded
        both = encoded.present[self.query] & encoded.present[self.target]
        if not bool(both.all()):
            left = [int(r) for r in encoded.rows[~both.numpy()]]
            encoded.report["pairs_left_out"] = left
            self._log(f"{split}: {len(left)} rows lack a usable {self.query!r} or {self.target!r} and are left out "
                      f"of the pairs (rows {', '.join(map(str, left[:8]))}{', ...' if len(left) > 8 else ''})",
                      logging.WARNING)
        if int(both.sum()) < 2:
            raise DataError(f"{split}: fewer than 2 usable ({self.query}, {self.target}) pairs")
        return encoded.take(torch.nonzero(both).squeeze(1))

    def targets(self, frame: pd.DataFrame, split: EncodedSplit) -> torch.Tensor:
        """Row i's match is row i: the pairs' positions."""
        return torch.arange(len(split.rows))

    def _build_model(self) -> TwoTowerModel:
        settings, towers = self.config_.retrieval, (self.query, self.target)
        locked = next((n for n in towers if self.plan_[n].kind == settings.locked), None)
        if settings.locked is not None and locked is None:
            raise ConfigError(f"retrieval.locked is {settings.locked!r}, but neither {self.query!r} nor "
                              f"{self.target!r} is a {settings.locked} column")
        return build_two_tower(self._encoder_inputs(), self.query, self.target, settings.embed_dim,
                               settings.temperature, locked)

    def _score(self, dataset: TableDataset) -> dict[str, float]:
        split = dataset.split
        return retrieval_metrics(self._embed_split(split, self.query) @ self._embed_split(split, self.target).T)

    def _bundle_fields(self) -> dict[str, Any]:
        return {"query": self.query, "target": self.target}

    @classmethod
    def _from_bundle_fields(cls, config: dict[str, Any], **kwargs: Any) -> "Retriever":
        return cls(query=config["query"], target=config["target"], **kwargs)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "embed_dim": self.config_.retrieval.embed_dim}

    # --- inference ----------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def _embed_split(self, split: EncodedSplit, name: str) -> np.ndarray:
        tower = self.pipeline_.select([name])
        device = self._model_on_device()
        loader = make_loader(tower.dataset(split), tower.batch_rows(), False, pin_memory=device.type == "cuda")
        out = [self.model_.embed(name, batch.inputs[name].to(device, non_blocking=True)).float().cpu()
               for batch in loader]
        return torch.cat(out).numpy()

    def evaluate(self, data: TableLike) -> dict[str, float]:
        """Recall@1/5/10, median rank and MRR in both directions over the pairs in ``data`` (each row a pair; every
        other row's target is a distractor), and the number of pairs scored."""
        self._check_fitted()
        table = read_table(data, "evaluate")
        frame, left_out = self._usable_rows(table.frame, "evaluate")
        pairs = self._encode(frame, table.root, "evaluate", left_out)
        return {"pairs": len(pairs.rows), **self._score(self.pipeline_.dataset(pairs)), **row_accounting(pairs)}

    def embed(self, data: TableLike, column: str, tower: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Unit embeddings of one column through a tower (by default the tower of the same name) -> (row ids (N,),
        embeddings (N, D)); rows whose value is missing or unreadable are reported and left out."""
        self._check_fitted()
        tower = tower or column
        self._check_tower(tower)
        table = read_table(data, "embed")
        if column not in table.frame.columns:
            raise DataError(f"column {column!r} not found; columns are: {', '.join(map(str, table.frame.columns))}")
        frame = table.frame[[column]].rename(columns={column: tower})
        encoded = self._encode(frame, table.root, "embed", pipeline=self.pipeline_.select([tower]))
        keep = torch.nonzero(encoded.present[tower]).squeeze(1)
        if len(keep) < len(encoded.rows):
            self._log(f"embed: {len(encoded.rows) - len(keep)} rows of {column!r} left out", logging.WARNING)
        split = encoded.take(keep)
        return split.rows, self._embed_split(split, tower)

    def _check_tower(self, tower: str) -> None:
        if tower not in (self.query, self.target):
            raise DataError(f"no tower {tower!r}: this model's towers are {self.query!r} and {self.target!r}")

    def embed_values(self, tower: str, values: list[Any], root: str | Path = ".") -> np.ndarray:
        """Unit embeddings (N, D) of raw values (texts, or file paths relative to ``root``) through one tower."""
        self._check_fitted()
        self._check_tower(tower)
        frame = pd.DataFrame({tower: values})
        encoded = self._encode(frame, Path(root), "query", pipeline=self.pipeline_.select([tower]))
        if not bool(encoded.present[tower].all()):
            raise DataError(f"query: {values[int((~encoded.present[tower]).nonzero()[0])]!r} could not be read")
        return self._embed_split(encoded, tower)

    def tower_of_modality(self, modality: str) -> str:
        """The tower (column) that reads this modality."""
        self._check_fitted()
        kinds = {n: self.pipeline_.processors[n].modality for n in (self.query, self.target)}
        towers = [n for n in (self.query, self.target) if kinds[n] == modality]
        if not towers:
            raise DataError(f"this model has no {modality} tower (its towers: "
                            f"{', '.join(f'{n} ({kinds[n]})' for n in (self.query, self.target))})")
        return towers[0]

    def zero_shot(self, data: TableLike, label: str, prompt: str = "{}") -> dict[str, float]:
        """Classify the non-text column of ``data`` by its nearest class-name prompt (``prompt`` with ``{}`` for
        the class); returns accuracy, the number of classes and of rows scored."""
        self._check_fitted()
        text = self.tower_of_modality("text")
        other = self.target if text == self.query else self.query
        table = read_table(data, "zero-shot")
        if label not in table.frame.columns:
            raise DataError(f"zero-shot: label column {label!r} not found")
        labels = table.frame[label]
        classes = sorted(labels.dropna().astype(str).unique())
        prompts = self.embed_values(text, [prompt.replace("{}", c) for c in classes])  # (K, D)
        rows, items = self.embed(table, other)
        truth = labels.loc[rows].astype(str).to_numpy()
        predicted = np.asarray(classes)[(items @ prompts.T).argmax(1)]
        return {"accuracy": float((predicted == truth).mean()), "classes": len(classes), "rows": len(rows)}
