"""Processors of pretrained encoders: the encoder's own tokenizer or image scaling, and cached features when frozen.

Frozen (the default), ``transform`` returns backbone features (N, F): each distinct text or file is looked up in the
feature cache by its content hash and the backbone runs (batched, with a progress bar) only on misses, so training
touches only the projections, fusion and head. Fine-tuned, ``transform`` returns what the backbone reads (token ids
with -1 as padding, or uint8 pixels scaled to [-1, 1] per batch) and the backbone trains inside the encoder.

Frozen features are computed under bf16 autocast unless ``precision: "32"`` (on this project's 2-core CPU: 2.7x
faster for EfficientNet-Lite0, 3x for MiniLM, features within cosine 0.999 of float32); the precision is part of
the cache key and of the identity a saved model checks.

Text with ``ngrams`` (the lexical path, ``core.ngrams``): each row also carries the ids of its distinct word n-grams,
appended after the frozen features as (N, F + L) floats (ids are exact in float32 up to 2**24), or after the
``max_length`` token ids when fine-tuned; the encoder splits them at F (or ``max_length``).
"""

from __future__ import annotations

import io
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from ...core.columns import ColumnInfo
from ...core.ngrams import drop_ngrams, fit_vocabulary, ngram_ids, ngram_index, ngram_settings
from ...core.processor import (EMPTY, TRUNCATED, UNREADABLE, Corruption, Problem, Processor, Progress, Transformed,
                               is_empty, resolve_path, trim_padding)
from ...errors import BundleError, ConfigError
from ...io.cache import FeatureCache
from ...io.hashing import sha256_bytes
from ...io.images import MAX_PIXELS, ImageTooLarge, load_image
from .backbones import IMAGE_FEATURES, backbone_identity, load_backbone, text_feature_dim, text_model_dir

BATCH = 64


class _PretrainedProcessor(Processor):
    """Shared: content keys, the bad-value policy, the feature cache and the backbone run on misses.

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
            self._backbone = load_backbone(self.source).to(self.device)

    @classmethod
    def for_input(cls, columns: list[ColumnInfo], settings: dict[str, Any]) -> "_PretrainedProcessor":
        if settings.get("precision", "bf16") not in ("32", "bf16"):
            raise ConfigError(f"column {columns[0].name!r}: precision must be \"32\" or \"bf16\", not "
                              f"{settings['precision']!r}")
        if not settings.get("source"):
            raise ConfigError(f"column {columns[0].name!r}: text_hf needs a local model folder, e.g. "
                              "text_hf:/path/to/model")
        return super().for_input(columns, settings)

    def _settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def _current_identity(self) -> dict[str, Any]:
        precision = {"precision": self.precision} if self.precision != "32" else {}  # format 1 features were fp32
        return {**backbone_identity(self.source), **self._settings(), **precision}

    def fit(self, values: pd.Series, root: Path, progress: Progress | None = None) -> "_PretrainedProcessor":
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
                cached = cache.get(key)
                if cached is None:
                    todo[key] = rows
                else:
                    features[rows] = torch.from_numpy(cached)
            computed = self._compute(todo, contents, values, present, problems, cache, features, progress)
        self.last_extraction = {"cached": cache.hits, "computed": computed, "seconds": time.perf_counter() - start}
        return Transformed(features, present, problems)

    def _compute(self, todo, contents, values, present, problems, cache, features, progress: Progress | None) -> int:
        """Run the backbone on the contents not in the cache; returns how many distinct values it computed."""
        # shortest contents first: a batch of texts is padded to its longest, so similar lengths waste less
        keys, computed = sorted(todo, key=lambda key: len(contents[todo[key][0]])), 0
        if keys:
            self.warm_up()
        for start in range(0, len(keys), BATCH):
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

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"feature_dim": self.feature_dim_, "source": self.source}

    def corruptions(self) -> dict[str, Corruption]:
        """Frozen: noise on the cached features; fine-tuned: none for token ids (images: see the subclass)."""
        return {} if self.finetune else {"feature noise": feature_noise}


class PretrainedTextProcessor(_PretrainedProcessor):
    """Text with the backbone's own tokenizer (``tokenizer.json``), truncated to ``max_length`` tokens; with
    ``ngrams`` (a dict of ``core.ngrams.NgramParams``), also the ids of each text's word n-grams."""

    kind, modality = "pretrained_text", "text"
    ragged = True  # ids trimmed to the batch's longest row

    def __init__(self, column: str, source: str, finetune: bool = False, max_length: int = 64,
                 precision: str = "bf16", ngrams: dict[str, Any] | None = None):
        super().__init__(column, source, finetune, precision)
        self.max_length, self.ngrams = max_length, ngrams
        self._ngram_settings = ngram_settings(column, ngrams) if ngrams is not None else None

    def _settings(self) -> dict[str, Any]:
        return {"max_length": self.max_length}

    def fit(self, values: pd.Series, root: Path, progress: Progress | None = None) -> "PretrainedTextProcessor":
        self.feature_dim_ = text_feature_dim(self.source)
        if self._ngram_settings is not None:
            self.ngram_vocabulary_ = fit_vocabulary(values, self._ngram_settings)
        self._restore_tokenizer()
        return super().fit(values, root)

    def _setup(self) -> None:
        super()._setup()
        self._restore_tokenizer()

    def _restore_tokenizer(self) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(text_model_dir(self.source) / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_truncation(self.max_length)
        if self._ngram_settings is not None:
            self._ngram_index = ngram_index(self.ngram_vocabulary_)

    def transform(self, values: pd.Series, root: Path, progress: Progress | None = None) -> Transformed:
        out = super().transform(values, root, progress)
        if self._ngram_settings is None:
            return out
        lexical = ngram_ids(values, self._ngram_index, self._ngram_settings, self.column)  # (N, L) long
        truncated = [p for p in lexical.problems if p.kind == TRUNCATED]
        if self.finetune:  # token ids at their full width, so the encoder knows where the n-grams start
            tokens = torch.full((len(values), self.max_length), -1, dtype=torch.long)
            tokens[:, : out.values.shape[1]] = out.values
            return Transformed(torch.cat([tokens, lexical.values], 1), out.present, out.problems + truncated)
        return Transformed(torch.cat([out.values, lexical.values.float()], 1), out.present, out.problems + truncated)

    def _content(self, value: Any, root: Path) -> bytes:
        return str(value).encode("utf-8")

    def _decode(self, content: bytes) -> Tensor:
        return torch.tensor(self._tok.encode(content.decode("utf-8")).ids, dtype=torch.long)

    def _stack(self, decoded: list[Tensor | None]) -> Tensor:
        """Token ids (N, L) with -1 as padding (also for missing rows)."""
        width = max((len(d) for d in decoded if d is not None), default=1)
        ids = torch.full((len(decoded), width), -1, dtype=torch.long)
        for i, d in enumerate(decoded):
            if d is not None:
                ids[i, : len(d)] = d
        return ids

    def _split(self) -> int:
        """Where the n-gram ids start in a stored row: after the features, or the token ids when fine-tuned."""
        return self.max_length if self.finetune else self.feature_dim_

    def prepare_batch(self, x: Tensor, train: bool) -> Tensor:
        if self._ngram_settings is not None:  # the n-gram ids are left-aligned after the split: no copy needed
            return trim_padding(x, self._split())
        if not self.finetune:
            return x
        longest = int((x >= 0).sum(1).max().clamp(min=1))
        return x[:, :longest]

    def encoder_kwargs(self) -> dict[str, Any]:
        lexical = {"ngram_vocab_size": len(self.ngram_vocabulary_) + 1} if self._ngram_settings is not None else {}
        return {**super().encoder_kwargs(), **lexical}

    def corruptions(self) -> dict[str, Corruption]:
        """Frozen: noise on the features; with n-grams, also n-gram drop (on the n-gram part only)."""
        if self._ngram_settings is None:
            return super().corruptions()
        split = self._split()
        deep = {} if self.finetune else {"feature noise": _on_columns(feature_noise, 0, split)}
        return {**deep, "word drop": _on_columns(drop_ngrams, split, None)}


class PretrainedImageProcessor(_PretrainedProcessor):
    """Images as the backbone was trained on them: RGB (transparency on white), ``image_size`` square, [-1, 1]."""

    kind, modality = "pretrained_image", "image"
    streamable = True

    shared_settings = ("max_pixels",)  # read from preprocess.image too

    def __init__(self, column: str, source: str = "efficientnet_lite0", finetune: bool = False, image_size: int = 224,
                 precision: str = "bf16", max_pixels: int = MAX_PIXELS):
        super().__init__(column, source, finetune, precision)
        self.image_size, self.max_pixels = image_size, max_pixels

    def _settings(self) -> dict[str, Any]:
        return {"image_size": self.image_size}

    def fit(self, values: pd.Series, root: Path, progress: Progress | None = None) -> "PretrainedImageProcessor":
        self.feature_dim_ = IMAGE_FEATURES
        return super().fit(values, root)

    def _content(self, value: Any, root: Path) -> bytes:
        return resolve_path(value, root).read_bytes()

    def _decode(self, content: bytes) -> Tensor:
        try:
            return torch.from_numpy(load_image(io.BytesIO(content), self.image_size, 3, self.max_pixels))  # (3, S, S)
        except ImageTooLarge:
            raise
        except Exception as err:  # Pillow raises many types for a corrupt file
            raise ValueError(f"not a readable image ({type(err).__name__})") from None

    def _stack(self, decoded: list[Tensor | None]) -> Tensor:
        out = torch.zeros(len(decoded), 3, self.image_size, self.image_size, dtype=torch.uint8)
        for i, d in enumerate(decoded):
            if d is not None:
                out[i] = d
        return out if self.finetune else self.prepare_pixels(out)

    def corruptions(self) -> dict[str, Corruption]:
        return {"noise": pixel_noise} if self.finetune else super().corruptions()

    @staticmethod
    def prepare_pixels(x: Tensor) -> Tensor:
        """uint8 (B, 3, S, S) -> float in [-1, 1], as the backbone was trained."""
        return x.float() / 127.5 - 1.0

    def prepare_batch(self, x: Tensor, train: bool) -> Tensor:
        return self.prepare_pixels(x) if self.finetune else x


def feature_noise(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """(B, F) cached features of a frozen pretrained encoder + Gaussian noise of 2 * level per-feature std."""
    return x + 2 * level * x.std(0, keepdim=True) * torch.randn(x.shape, generator=gen)


def pixel_noise(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """(B, 3, S, S) images in [-1, 1] + Gaussian noise of 2 * level (the image plugin's noise, on these pixels)."""
    return x + 2 * level * torch.randn(x.shape, generator=gen)


def _on_columns(corruption: Corruption, start: int, stop: int | None) -> Corruption:
    """A corruption applied to columns ``start:stop`` of a (B, W) batch only, the other columns kept."""
    def corrupt(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
        x = x.clone()
        x[:, start:stop] = corruption(x[:, start:stop], level, gen)
        return x
    return corrupt
