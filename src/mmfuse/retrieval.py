"""Two-tower retrieval (image-text, audio-text, ...) trained with CLIP's symmetric InfoNCE loss.

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

import math
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from rich.console import Console
from torch import Tensor, nn

from .bundle import load_bundle, load_weights, save_bundle
from .config import ModelConfig, load_config, setting_overrides, validate_config
from .data.dataset import EncodedSplit, TableDataset, describe_report, encode_split, make_loader
from .data.detect import ColumnInfo, detect_columns
from .data.preprocess import Processor, build_processors, restore_processors, use_cache_dir
from .data.table import Table, read_table, split_rows
from .errors import BundleError, ConfigError, DataError
from .model import make_encoder, resolve_encoder, with_finetuning
from .report import plot_learning_curves

console = Console(stderr=True)
TableLike = "str | Path | pd.DataFrame | Table"
RECALL_AT = (1, 5, 10)
DIRECTIONS = ("q2t", "t2q")  # query -> target (find the target for a query), target -> query


def info_nce(query: Tensor, target: Tensor) -> Tensor:
    """Symmetric InfoNCE over a batch of matching pairs: query, target (B, D), already scaled so that
    ``query @ target.T`` are the logits (temperature-scaled cosine similarities); row i matches column i."""
    logits = query @ target.T  # (B, B)
    labels = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def match_ranks(similarity: np.ndarray) -> np.ndarray:
    """Rank (1 = first) of each row's match (the diagonal) among that row's scores; ties count against the match."""
    diagonal = np.diagonal(similarity)[:, None]
    return (similarity >= diagonal).sum(1)


def retrieval_metrics(similarity: np.ndarray) -> dict[str, float]:
    """Recall@1/5/10, median rank and mean reciprocal rank in both directions from an (N, N) similarity matrix whose
    row i (query i) matches column i (target i); ``mean_recall`` averages the six recalls (the early-stopping score)."""
    metrics: dict[str, float] = {}
    for direction, sim in zip(DIRECTIONS, (similarity, similarity.T)):
        ranks = match_ranks(sim)
        for k in RECALL_AT:
            metrics[f"{direction}_r@{k}"] = float((ranks <= k).mean())
        metrics[f"{direction}_median_rank"] = float(np.median(ranks))
        metrics[f"{direction}_mrr"] = float((1.0 / ranks).mean())
    metrics["mean_recall"] = float(np.mean([metrics[f"{d}_r@{k}"] for d in DIRECTIONS for k in RECALL_AT]))
    return metrics


class RetrievalTask:
    """The task interface the training loop uses: loss, outputs, metrics of stacked (B, 2, D) embeddings."""

    name, primary_metric, maximize = "retrieval", "mean_recall", True

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return info_nce(logits[:, 0].float(), logits[:, 1].float())

    def outputs(self, logits: Tensor) -> np.ndarray:
        return logits.float().numpy()

    def metrics(self, target: Tensor, outputs: np.ndarray) -> dict[str, float]:
        return retrieval_metrics(outputs[:, 0] @ outputs[:, 1].T)


class RetrievalOutput(NamedTuple):
    logits: Tensor  # (B, 2, D): query and target embeddings, each scaled by sqrt(1 / temperature)


class RetrievalModel(nn.Module):
    """Two towers (encoder + projection) into one space, and CLIP's learned temperature (capped at 1/100).

    ``locked``: the name of a tower used as is (no projection; LiT): the shared space is its encoder's output.
    """

    def __init__(self, encoders: nn.ModuleDict, query: str, target: str, embed_dim: int = 256,
                 temperature: float = 0.07, locked: str | None = None):
        super().__init__()
        self.encoders, self.query, self.target = encoders, query, target
        if locked is not None:
            embed_dim = encoders[locked].output_dim
        self.projections = nn.ModuleDict({n: nn.Identity() if n == locked or e.output_dim == embed_dim else
                                          nn.Linear(e.output_dim, embed_dim) for n, e in encoders.items()})
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))

    def embed(self, name: str, x: Tensor) -> Tensor:
        """One tower: prepared input (B, ...) -> unit vectors (B, embed_dim)."""
        return F.normalize(self.projections[name](self.encoders[name](x)).float(), dim=-1)

    def forward(self, inputs: dict[str, Tensor], present: dict[str, Tensor] | None = None) -> RetrievalOutput:
        scale = self.logit_scale.clamp(max=math.log(100)).exp().sqrt()
        return RetrievalOutput(torch.stack([self.embed(self.query, inputs[self.query]) * scale,
                                            self.embed(self.target, inputs[self.target]) * scale], dim=1))


class Retriever:
    """Train, evaluate, embed with, save and load a two-tower retrieval model over two columns of a pair table.

    Args:
        query, target: the two columns (text, image, audio or sequence), e.g. ``caption`` and ``image``.
        preset, config, encoders, column_types: as for ``Predictor`` (preset ``retrieval``: frozen MiniLM text
            and EfficientNet-Lite0 image towers, the text tower locked).
        finetune: train pretrained backbones too; cache_dir: where frozen features are cached.
        on_bad_row: error, or leave out (``skip`` / ``mask``: the same for pairs) rows with an unreadable value.
        seed, batch_size, lr, max_epochs, time_limit, threads: override the preset's training settings.
    """

    def __init__(self, query: str, target: str, preset: str = "retrieval", config: str | Path | dict | None = None,
                 encoders: dict[str, str] | None = None, column_types: dict[str, str] | None = None,
                 finetune: bool = False, cache_dir: str | Path | None = None, on_bad_row: str = "skip",
                 seed: int | None = None, batch_size: int | None = None, lr: float | None = None,
                 max_epochs: int | None = None, time_limit: float | None = None, threads: int | None = None,
                 progress: bool = True, verbose: bool = True):
        if query == target:
            raise ConfigError(f"query and target must be two different columns, both are {query!r}")
        if on_bad_row not in ("error", "skip", "mask"):
            raise ConfigError(f"on_bad_row must be error, skip or mask, not {on_bad_row!r}")
        self.query, self.target, self.preset, self.config = query, target, preset, config
        self.encoders, self.column_types, self.finetune, self.cache_dir = encoders, column_types, finetune, cache_dir
        self.on_bad_row, self.seed, self.batch_size, self.lr = on_bad_row, seed, batch_size, lr
        self.max_epochs, self.time_limit, self.threads = max_epochs, time_limit, threads
        self.progress, self.verbose = progress, verbose

    def _resolve_config(self) -> ModelConfig:
        overrides = setting_overrides({"seed": self.seed, "batch_size": self.batch_size, "lr": self.lr,
                                       "max_epochs": self.max_epochs, "time_limit": self.time_limit,
                                       "threads": self.threads}, self.encoders)
        cfg = load_config(self.preset, self.config, overrides)
        return with_finetuning(cfg) if self.finetune else cfg

    def _say(self, message: str) -> None:
        if self.verbose:
            console.print(message, highlight=False)

    # --- fit ----------------------------------------------------------------------------------------------------
    def fit(self, train: TableLike, valid: TableLike | None = None) -> "Retriever":
        """Learn the towers from matching pairs in ``train``; validate on ``valid`` or a seeded hold-out."""
        start = time.perf_counter()
        self.config_ = cfg = self._resolve_config()
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        table = read_table(train, "train")
        frame = self._pair_columns(table.frame, "train")
        if valid is None:
            train_idx, valid_idx = split_rows(None, len(frame), cfg.train.valid_fraction, cfg.train.seed)
            valid_table = Table(frame.iloc[valid_idx], table.root, "valid")
            frame = frame.iloc[train_idx]
            self._say(f"validation: {len(valid_idx)} pairs held out from train (seed {cfg.train.seed})")
        else:
            valid_table = read_table(valid, "valid")
            valid_table.frame = self._pair_columns(valid_table.frame, "valid")
        self.columns_ = detect_columns(frame, [], table.root, self.column_types)
        for col in self.columns_:
            if col.modality not in ("text", "image", "audio", "sequence"):
                raise DataError(f"column {col.name!r} is {col.modality}: retrieval pairs text, image, audio or "
                                "sequence columns (set its type with --column-type)")
        self.processors_ = build_processors(self.columns_, cfg)
        use_cache_dir(self.processors_, self.cache_dir)
        for name, proc in self.processors_.items():
            proc.fit(frame[name], table.root)
        train_split = self._pairs(frame, table.root, "train")
        features = {"train": self._extraction()}  # input -> features read from the cache / computed, seconds
        valid_split = self._pairs(valid_table.frame, valid_table.root, "valid")
        features["valid"] = self._extraction()
        self.data_report_ = {"train": train_split.report, "valid": valid_split.report}
        train_set = TableDataset(train_split, self.processors_, torch.arange(len(train_split.rows)), train=True)
        valid_set = TableDataset(valid_split, self.processors_, torch.arange(len(valid_split.rows)))

        torch.manual_seed(cfg.train.seed)
        self.model_ = self._build_model()
        n_params = sum(p.numel() for p in self.model_.parameters() if p.requires_grad)
        self._say(f"task: retrieval {self.query} <-> {self.target}; {n_params:,} trainable parameters; "
                  f"train {len(train_set)} pairs, valid {len(valid_set)} pairs")
        from .training import train as run_training

        self.history_ = run_training(self.model_, RetrievalTask(), train_set, valid_set, cfg.train, self.progress)
        self.fit_time_ = time.perf_counter() - start
        self.metrics_ = {"valid": self._score(valid_split), "epochs": len(self.history_),
                         "fit_seconds": round(self.fit_time_, 2), "parameters": n_params,
                         "features": features}
        return self

    def _pair_columns(self, frame: pd.DataFrame, split: str) -> pd.DataFrame:
        for col in (self.query, self.target):
            if col not in frame.columns:
                raise DataError(f"{split}: column {col!r} not found; columns are: {', '.join(map(str, frame.columns))}")
        return frame[[self.query, self.target]]

    def _encode(self, frame: pd.DataFrame, root: Path, split: str, processors: dict[str, Processor]) -> EncodedSplit:
        policy = "error" if self.on_bad_row == "error" else "mask"
        encoded = encode_split(frame, root, processors, policy, split)
        for line in describe_report(encoded.report, split):
            self._say(f"[yellow]{line}[/yellow]")
        return encoded

    def _extraction(self) -> dict[str, dict[str, float]]:
        """What the last transform of each cached-feature input did (counts and seconds)."""
        return {n: p.last_extraction for n, p in self.processors_.items() if getattr(p, "last_extraction", None)}

    def _pairs(self, frame: pd.DataFrame, root: Path, split: str) -> EncodedSplit:
        """Encoded rows where both sides are present; the others are reported and left out."""
        encoded = self._encode(frame, root, split, self.processors_)
        both = encoded.present[self.query] & encoded.present[self.target]
        if not bool(both.all()):
            left_out = [int(r) for r in encoded.rows[~both.numpy()]]
            encoded.report["pairs_left_out"] = left_out
            self._say(f"[yellow]{split}: {len(left_out)} rows lack a usable {self.query!r} or {self.target!r} and "
                      f"are left out of the pairs (rows {', '.join(map(str, left_out[:8]))}"
                      f"{', ...' if len(left_out) > 8 else ''})[/yellow]")
        if int(both.sum()) < 2:
            raise DataError(f"{split}: fewer than 2 usable ({self.query}, {self.target}) pairs")
        index = torch.nonzero(both).squeeze(1)
        return EncodedSplit({n: t[index] for n, t in encoded.stored.items()},
                            {n: m[index] for n, m in encoded.present.items()}, encoded.rows[index.numpy()],
                            encoded.report)

    def _build_model(self) -> RetrievalModel:
        encoders = nn.ModuleDict()
        for name in (self.query, self.target):
            proc = self.processors_[name]
            encoders[name] = make_encoder(resolve_encoder(self.config_, name, proc.modality), proc.encoder_kwargs())
        settings = self.config_.retrieval
        locked = None
        if settings.locked is not None:
            locked = next((n for n in encoders if self.processors_[n].modality == settings.locked), None)
            if locked is None:
                raise ConfigError(f"retrieval.locked is {settings.locked!r}, but neither {self.query!r} nor "
                                  f"{self.target!r} is a {settings.locked} column")
        return RetrievalModel(encoders, self.query, self.target, settings.embed_dim, settings.temperature, locked)

    # --- inference ----------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise DataError("this Retriever is not fitted yet: call fit() or Retriever.load()")

    @torch.inference_mode()
    def _embed_split(self, split: EncodedSplit, name: str, batch_size: int = 256) -> np.ndarray:
        dataset = TableDataset(split, {name: self.processors_[name]})
        self.model_.eval()
        out = [self.model_.embed(name, batch.inputs[name]) for batch in make_loader(dataset, batch_size, False)]
        return torch.cat(out).numpy()

    def _score(self, split: EncodedSplit) -> dict[str, float]:
        return retrieval_metrics(self._embed_split(split, self.query) @ self._embed_split(split, self.target).T)

    def evaluate(self, data: TableLike) -> dict[str, float]:
        """Recall@1/5/10, median rank and MRR in both directions over the pairs in ``data`` (each row a pair; every
        other row's target is a distractor), and the number of pairs scored."""
        self._check_fitted()
        table = read_table(data, "evaluate")
        pairs = self._pairs(self._pair_columns(table.frame, "evaluate"), table.root, "evaluate")
        return {"pairs": len(pairs.rows), **self._score(pairs)}

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
        encoded = self._encode(frame, table.root, "embed", {tower: self.processors_[tower]})
        keep = torch.nonzero(encoded.present[tower]).squeeze(1)
        if len(keep) < len(encoded.rows):
            self._say(f"[yellow]embed: {len(encoded.rows) - len(keep)} rows of {column!r} left out[/yellow]")
        split = EncodedSplit({tower: encoded.stored[tower][keep]}, {tower: encoded.present[tower][keep]},
                             encoded.rows[keep.numpy()], encoded.report)
        return split.rows, self._embed_split(split, tower)

    def _check_tower(self, tower: str) -> None:
        if tower not in (self.query, self.target):
            raise DataError(f"no tower {tower!r}: this model's towers are {self.query!r} and {self.target!r}")

    def embed_values(self, tower: str, values: list[Any], root: str | Path = ".") -> np.ndarray:
        """Unit embeddings (N, D) of raw values (texts, or file paths relative to ``root``) through one tower."""
        self._check_fitted()
        self._check_tower(tower)
        frame = pd.DataFrame({tower: values})
        encoded = self._encode(frame, Path(root), "query", {tower: self.processors_[tower]})
        if not bool(encoded.present[tower].all()):
            raise DataError(f"query: {values[int((~encoded.present[tower]).nonzero()[0])]!r} could not be read")
        return self._embed_split(encoded, tower)

    def tower_of_modality(self, modality: str) -> str:
        """The tower (column) that reads this modality."""
        towers = [n for n in (self.query, self.target) if self.processors_[n].modality == modality]
        if not towers:
            raise DataError(f"this model has no {modality} tower (its towers: "
                            f"{', '.join(f'{n} ({self.processors_[n].modality})' for n in (self.query, self.target))})")
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

    # --- persistence --------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model folder (JSON + safetensors; frozen backbones are not copied, their identity is kept)."""
        self._check_fitted()
        config = {"task": {"name": "retrieval"}, "query": self.query, "target": self.target,
                  "on_bad_row": self.on_bad_row, "columns": [vars(c) for c in self.columns_],
                  "model": self.config_.model_dump(mode="json")}
        processors = {name: proc.state_dict() for name, proc in self.processors_.items()}
        out = save_bundle(path, config, processors, self.model_.state_dict(), self.metrics_, self.data_report_,
                          self.history_)
        if self.history_:
            plot_learning_curves(self.history_, out / "learning_curves.png", RetrievalTask.primary_metric)
        self.path_ = str(out)
        return out

    @classmethod
    def load(cls, path: str | Path, verbose: bool = True, cache_dir: str | Path | None = None) -> "Retriever":
        """Rebuild a saved retrieval model (checksum, format version and backbone identity verified)."""
        bundle = load_bundle(path)
        config = bundle.config
        if config.get("task", {}).get("name") != "retrieval":
            raise BundleError(f"{path} is not a retrieval model: load it with mmfuse.Predictor.load")
        retriever = cls(config["query"], config["target"], on_bad_row=config.get("on_bad_row", "skip"),
                        cache_dir=cache_dir, verbose=verbose)
        retriever.config_ = validate_config(config["model"], f"{path}/config.json")
        retriever.columns_ = [ColumnInfo(**c) for c in config["columns"]]
        retriever.processors_ = restore_processors(bundle.processors, cache_dir)
        retriever.model_ = retriever._build_model()
        load_weights(retriever.model_, bundle.weights, path)
        retriever.metrics_, retriever.data_report_, retriever.history_ = bundle.metrics, bundle.data_report, bundle.history
        retriever.path_ = str(path)
        return retriever
