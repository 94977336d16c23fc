"""Frozen pretrained features: the processor base a pretrained backbone's processor builds on (the text and image
plugins' ``pretrained_text`` / ``pretrained_image``).

Frozen (the default), ``transform`` returns backbone features (N, F): each distinct text or file is looked up in the
feature cache by its content hash and the backbone runs (batched, reporting its progress) only on misses, so training
touches only the projections, fusion and head. Fine-tuned, ``transform`` returns what the backbone reads and the
backbone trains inside the encoder.

Frozen features are computed under bf16 autocast unless ``precision: "32"`` (on this project's 2-core CPU: 2.7x
faster for EfficientNet-Lite0, 3x for MiniLM, features within cosine 0.999 of float32); the precision is part of
the cache key and of the identity a saved model checks.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from ..errors import BundleError, ConfigError
from ..io.cache import FeatureCache
from ..io.hashing import sha256_bytes
from .columns import ColumnInfo
from .deadline import check_deadline
from .modality import is_empty
from .processor import EMPTY, UNREADABLE, Corruption, Problem, Processor, Progress, Transformed

BATCH = 64
PRETRAINED_HINT = "reinstall mmfuse with its dependencies: pip install -e . -c constraints.txt"


class FrozenFeatureProcessor(Processor):
    """What a pretrained backbone's processor shares: content keys, the bad-value policy, the feature cache and the
    backbone run on misses. A subclass (a modality plugin's) supplies the backbone (``_load_backbone``), what
    identifies it (``_backbone_identity``), how a value's content is read and decoded, and how inputs stack.

    ``identity_`` (backbone, package version, weights hash, settings) is recorded at fit; a saved model whose
    backbone has changed since stops with a clear error instead of reading features from a different network.
    ``cache_dir`` (where features are cached; None: the default), ``cache_writes``, ``device`` (where the backbone
    runs) and ``last_extraction`` (what the last transform computed and read from the cache) are runtime values, not
    saved.
    """

    def __init__(self, column: str, source: str, finetune: bool, precision: str):
        self.column, self.source, self.finetune, self.precision = column, source, finetune, precision
        self.cache_dir: str | None = None
        self.cache_writes = True
        self.device = "cpu"
        self.last_extraction: dict[str, float] = {}
        self._backbone = None

    def use_cache(self, folder: str | None, write: bool = True) -> None:
        self.cache_dir, self.cache_writes = folder, write

    def use_device(self, device: str) -> None:
        self.device = device
        if self._backbone is not None:
            self._backbone.to(device)

    def extraction(self) -> dict[str, float]:
        return self.last_extraction

    def warm_up(self) -> None:
        if self._backbone is None and not self.finetune:  # fine-tuned: the backbone is in the model, not here
            self._backbone = self._load_backbone().eval().to(self.device)

    @classmethod
    def for_input(cls, columns: list[ColumnInfo], settings: dict[str, Any]) -> "FrozenFeatureProcessor":
        if settings.get("precision", "bf16") not in ("32", "bf16"):
            raise ConfigError(f"column {columns[0].name!r}: precision must be \"32\" or \"bf16\", not "
                              f"{settings['precision']!r}")
        if not settings.get("source"):
            raise ConfigError(f"column {columns[0].name!r}: text_hf needs a local model folder, e.g. "
                              "text_hf:/path/to/model")
        return super().for_input(columns, settings)

    def _load_backbone(self) -> nn.Module:
        """The backbone named by ``source`` (weights from a local package or folder)."""
        raise NotImplementedError

    def _backbone_identity(self) -> dict[str, Any]:
        """What determines the backbone's outputs: its package and version (or folder) and its weights' hash."""
        raise NotImplementedError

    def _settings(self) -> dict[str, Any]:
        """The preprocessing settings that change the features (part of the identity)."""
        raise NotImplementedError

    def _current_identity(self) -> dict[str, Any]:
        precision = {"precision": self.precision} if self.precision != "32" else {}  # format 1 features were fp32
        return {**self._backbone_identity(), **self._settings(), **precision}

    def fit(self, values: pd.Series, root: Path, progress: Progress | None = None) -> "FrozenFeatureProcessor":
        self.identity_ = self._current_identity()
        return self

    def _setup(self) -> None:
        now = self._current_identity()
        if now != self.identity_:
            changed = ", ".join(k for k in sorted(set(now) | set(self.identity_)) if now.get(k) != self.identity_.get(k))
            raise BundleError(f"column {self.column!r}: the pretrained backbone differs from the one this model was "
                              f"trained with ({changed}); reinstall that version or retrain")

    def _content(self, value: Any, root: Path) -> bytes:
        """The bytes that identify a value (its text, or its file's content)."""
        raise NotImplementedError

    def _decode(self, content: bytes) -> Tensor:
        """One value's content -> the backbone's input for it (unbatched)."""
        raise NotImplementedError

    def _read_all(self, values: pd.Series, root: Path) -> tuple[list[bytes | None], list[Problem]]:
        contents: list[bytes | None] = []
        problems = []
        for i, v in enumerate(values):
            if is_empty(v):
                contents.append(None)
                problems.append(Problem(i, self.column, EMPTY, f"no {self.modality}"))
                continue
            try:
                contents.append(self._content(v, root))
            except (OSError, ValueError) as err:  # ValueError: a path with a NUL byte
                contents.append(None)
                detail = f"{self.modality} file not found: {v}" if isinstance(err, FileNotFoundError) else \
                    f"cannot read {self.modality} {v}: {err}"
                problems.append(Problem(i, self.column, UNREADABLE, detail))
        return contents, problems

    def transform(self, values: pd.Series, root: Path, progress: Progress | None = None) -> Transformed:
        contents, problems = self._read_all(values, root)
        present = torch.tensor([c is not None for c in contents], dtype=torch.bool)
        if self.finetune:
            return self._raw_inputs(contents, present, problems, values)
        return self._features(contents, present, problems, values, progress)

    def _decoded(self, i: int, content: bytes, values: pd.Series, present: Tensor, problems: list) -> Tensor | None:
        try:
            return self._decode(content)
        except (OSError, ValueError) as err:
            present[i] = False
            problems.append(Problem(i, self.column, UNREADABLE, f"cannot read {self.modality} {values.iloc[i]}: {err}"))
            return None

    def _raw_inputs(self, contents, present, problems, values) -> Transformed:
        decoded = [self._decoded(i, c, values, present, problems) if c is not None else None
                   for i, c in enumerate(contents)]
        return Transformed(self._stack(decoded), present, problems)

    def _stack(self, decoded: list[Tensor | None]) -> Tensor:
        raise NotImplementedError

    def _features(self, contents, present, problems, values, progress: Progress | None) -> Transformed:
        """(N, F) float32 features: each distinct content read from the cache or computed (batched) and stored.
        Processes sharing the cache (DDP ranks) take turns: the first computes, the others find its features."""
        start = time.perf_counter()
        cache = FeatureCache(self.cache_dir, self.identity_)
        features = torch.zeros(len(contents), self.feature_dim_)
        rows_of: dict[str, list[int]] = {}  # content key -> rows with that content
        for i, content in enumerate(contents):
            if content is not None:
                rows_of.setdefault(sha256_bytes(content), []).append(i)
        with cache.lock() if self.cache_writes else nullcontext():
            todo = {}
            for key, rows in rows_of.items():
                cached = cache.get(key, (self.feature_dim_,))
                if cached is None:
                    todo[key] = rows
                else:
                    features[rows] = torch.from_numpy(cached)
            computed = self._compute(todo, contents, values, present, problems, cache, features, progress)
        self.last_extraction = {"cached": cache.hits, "computed": computed, "rejected": cache.rejected,
                                "seconds": time.perf_counter() - start}
        return Transformed(features, present, problems)

    def _compute(self, todo, contents, values, present, problems, cache, features, progress: Progress | None) -> int:
        """Run the backbone on the contents not in the cache; returns how many distinct values it computed."""
        # shortest contents first: a batch of texts is padded to its longest, so similar lengths waste less
        keys, computed = sorted(todo, key=lambda key: len(contents[todo[key][0]])), 0
        if keys:
            self.warm_up()
        for start in range(0, len(keys), BATCH):
            check_deadline()  # a served request's time limit, between batches of the backbone
            if progress:
                progress(f"{self.column!r}: {self.identity_['backbone']} features", start, len(keys))
            batch_keys, inputs = [], []
            for key in keys[start:start + BATCH]:
                row = todo[key][0]
                decoded = self._decoded(row, contents[row], values, present, problems)
                if decoded is None:
                    for other in todo[key][1:]:
                        present[other] = False
                        problems.append(Problem(other, self.column, UNREADABLE, problems[-1].detail))
                    continue
                batch_keys.append(key)
                inputs.append(decoded)
            if not inputs:
                continue
            device = torch.device(self.device)
            with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=self.precision == "bf16"):
                out = self._backbone(self._stack(inputs).to(device)).float().cpu()  # (b, F)
            for key, vector in zip(batch_keys, out):
                if self.cache_writes:
                    cache.put(key, vector.numpy())
                features[todo[key]] = vector
            computed += len(batch_keys)
        if keys and progress:
            progress(f"{self.column!r}: {self.identity_['backbone']} features", len(keys), len(keys))
        return computed

    def cached_share(self, values: pd.Series, root: Path, sample: int = 200) -> float:
        """The share of a seeded sample of the non-empty ``values`` whose features the cache already holds (what a
        fit's time plan need not pay for; 0 for a fine-tuned backbone, which computes every time)."""
        filled = values[~values.map(is_empty)]
        if self.finetune or filled.empty:
            return 0.0
        cache, picked = FeatureCache(self.cache_dir, self._current_identity()), filled.sample(
            min(len(filled), sample), random_state=0)
        held = 0
        for value in picked:
            try:
                held += cache.holds(sha256_bytes(self._content(value, root)))
            except (OSError, ValueError):
                continue  # unreadable: costs nothing either way
        return held / len(picked)

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"feature_dim": self.feature_dim_, "source": self.source}

    def corruptions(self) -> dict[str, Corruption]:
        """Frozen: noise on the cached features; fine-tuned: none for token ids (images: see the subclass)."""
        return {} if self.finetune else {"feature noise": feature_noise}


def feature_noise(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """(B, F) cached features of a frozen pretrained encoder + Gaussian noise of 2 * level per-feature std."""
    return x + 2 * level * x.std(0, keepdim=True) * torch.randn(x.shape, generator=gen)


def on_columns(corruption: Corruption, start: int, stop: int | None) -> Corruption:
    """A corruption applied to columns ``start:stop`` of a (B, W) batch only, the other columns kept."""
    def corrupt(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
        x = x.clone()
        x[:, start:stop] = corruption(x[:, start:stop], level, gen)
        return x
    return corrupt
