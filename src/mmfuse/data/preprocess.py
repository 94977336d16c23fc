"""One processor per model input, fitted on the training split only, with JSON-serialisable state.

Each processor turns raw column values into a stored tensor once (``transform``: decode, tokenise, impute) and
turns a batch of stored rows into model input every step (``prepare_batch``: scale, normalise, augment at train
time). Values that are empty or cannot be read are not dropped silently: ``transform`` returns them as
``Problem`` records and a per-row ``present`` mask; the caller applies the user's ``--on-bad-row`` policy.

Inputs: every text, image, audio and sequence column is its own input; numeric and categorical columns share one
``tabular`` input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from rich.console import Console
from rich.progress import track
from torch import Tensor

from ..config import ModelConfig
from ..errors import DataError
from .audio import frames_for, load_audio, log_mel
from .detect import ColumnInfo

TABULAR = "tabular"
EMPTY, UNREADABLE, UNKNOWN, TRUNCATED = "empty", "unreadable", "unknown_category", "truncated"


@dataclass(frozen=True)
class Problem:
    """One value that could not be used as is.

    ``kind``: empty (masked), unreadable (per ``--on-bad-row``), unknown_category (unknown bucket), truncated
    (a sequence or clip longer than the configured length, cut).
    """

    row: int
    column: str
    kind: str
    detail: str


@dataclass
class Transformed:
    values: Tensor                      # (N, ...) stored representation
    present: Tensor                     # (N,) bool: False where the input is missing for that row
    problems: list[Problem] = field(default_factory=list)


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or (isinstance(value, str) and not value.strip())


class Processor:
    """Base: ``fit(values, root) -> self``, ``transform(values, root)``, ``prepare_batch``, JSON state round trip."""

    kind: ClassVar[str]
    modality: ClassVar[str]
    _kinds: ClassVar[dict[str, type["Processor"]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            Processor._kinds[cls.kind] = cls

    def fit(self, values: Any, root: Path) -> "Processor":
        raise NotImplementedError

    def transform(self, values: Any, root: Path) -> Transformed:
        raise NotImplementedError

    def prepare_batch(self, x: Tensor, train: bool) -> Tensor:
        """Stored rows (B, ...) -> model input (B, ...). Identity unless overridden."""
        return x

    def encoder_kwargs(self) -> dict[str, Any]:
        """What the encoder must know about its input (vocabulary size, channels, ...)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Processor":
        state = dict(state)
        sub = Processor._kinds[state.pop("kind")]
        obj = sub.__new__(sub)
        obj.__dict__.update(state)
        obj._restore()
        return obj

    def _restore(self) -> None:
        """Rebuild non-JSON helpers after ``from_state``."""


class TextProcessor(Processor):
    """Text -> token ids (N, max_length), 0 = padding, via a ``tokenizers`` word / WordPiece / BPE vocabulary."""

    kind, modality = "text", "text"

    def __init__(self, column: str, tokenizer: str = "word", vocab_size: int = 10000, max_length: int = 64,
                 lowercase: bool = True):
        self.column, self.tokenizer, self.vocab_size = column, tokenizer, vocab_size
        self.max_length, self.lowercase = max_length, lowercase
        self.tokenizer_json: str | None = None

    def fit(self, values: pd.Series, root: Path) -> "TextProcessor":
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

        special = ["[PAD]", "[UNK]"]
        model, trainer = {
            "word": (models.WordLevel(unk_token="[UNK]"), trainers.WordLevelTrainer),
            "wordpiece": (models.WordPiece(unk_token="[UNK]"), trainers.WordPieceTrainer),
            "bpe": (models.BPE(unk_token="[UNK]"), trainers.BpeTrainer),
        }[self.tokenizer]
        tok = Tokenizer(model)
        norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if self.lowercase else [])
        tok.normalizer = normalizers.Sequence(norms)
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        texts = [str(v) for v in values if not is_empty(v)]
        tok.train_from_iterator(texts, trainer(vocab_size=self.vocab_size, special_tokens=special, show_progress=False))
        self.tokenizer_json = tok.to_str()
        self._restore()
        return self

    def _restore(self) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_str(self.tokenizer_json)
        self._tok.enable_truncation(self.max_length)

    def transform(self, values: pd.Series, root: Path) -> Transformed:
        ids = torch.zeros(len(values), self.max_length, dtype=torch.long)  # (N, L), 0 = [PAD]
        present = torch.ones(len(values), dtype=torch.bool)
        problems, texts, rows = [], [], []
        for i, v in enumerate(values):
            if is_empty(v):
                present[i] = False
                problems.append(Problem(i, self.column, EMPTY, "empty text"))
            else:
                texts.append(str(v))
                rows.append(i)
        for i, enc in zip(rows, self._tok.encode_batch(texts)):
            ids[i, : len(enc.ids)] = torch.tensor(enc.ids, dtype=torch.long)
        return Transformed(ids, present, problems)

    def prepare_batch(self, x: Tensor, train: bool) -> Tensor:
        longest = int((x != 0).sum(1).max().clamp(min=1))
        return x[:, :longest]  # drop padding columns no row in this batch uses

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"vocab_size": self._tok.get_vocab_size(), "max_length": self.max_length}


class ImageProcessor(Processor):
    """Image file paths -> uint8 (N, C, S, S) decoded once; batches are scaled, normalised and (train) augmented."""

    kind, modality = "image", "image"

    def __init__(self, column: str, size: int = 64, channels: str | int = "auto", normalize: bool = True,
                 augment: bool = True):
        self.column, self.size, self.channels = column, size, channels
        self.normalize, self.augment = normalize, augment
        self.mean: list[float] = []
        self.std: list[float] = []

    def _load(self, value: Any, root: Path) -> np.ndarray:
        return load_image(resolve_path(value, root), self.size, int(self.channels))

    def fit(self, values: pd.Series, root: Path) -> "ImageProcessor":
        if self.channels == "auto":
            self.channels = 3 if any(self._is_colour(v, root) for v in values.head(500) if not is_empty(v)) else 1
        sample = self.transform(values.head(2000), root)
        pixels = sample.values[sample.present].float() / 255  # (n, C, S, S)
        if len(pixels):
            self.mean = pixels.mean((0, 2, 3)).tolist()
            self.std = pixels.std((0, 2, 3)).clamp(min=1e-3).tolist()
        else:
            self.mean, self.std = [0.5] * self.channels, [0.25] * self.channels
        return self

    @staticmethod
    def _is_colour(value: Any, root: Path) -> bool:
        path = Path(str(value).strip())
        try:
            with Image.open(path if path.is_absolute() else root / path) as img:
                return img.mode not in ("L", "LA", "1", "I", "I;16", "F")
        except (OSError, UnidentifiedImageError):
            return False

    def transform(self, values: pd.Series, root: Path) -> Transformed:
        images = torch.zeros(len(values), int(self.channels), self.size, self.size, dtype=torch.uint8)
        present = torch.ones(len(values), dtype=torch.bool)
        problems = []
        console = Console(stderr=True)
        rows = track(enumerate(values), total=len(values), description=f"reading images of {self.column!r}",
                     disable=len(values) < 2000 or not console.is_terminal, transient=True, console=console)
        for i, v in rows:
            if is_empty(v):
                present[i] = False
                problems.append(Problem(i, self.column, EMPTY, "no image path"))
                continue
            try:
                images[i] = torch.from_numpy(self._load(v, root))
            except FileNotFoundError:
                present[i] = False
                problems.append(Problem(i, self.column, UNREADABLE, f"image file not found: {v}"))
            except (OSError, UnidentifiedImageError, ValueError) as err:
                present[i] = False
                problems.append(Problem(i, self.column, UNREADABLE, f"cannot read image {v}: {err}"))
        return Transformed(images, present, problems)

    def prepare_batch(self, x: Tensor, train: bool) -> Tensor:
        x = x.float() / 255  # (B, C, S, S) in [0, 1]
        if train and self.augment:
            x = _random_shift(x, max_shift=max(1, self.size // 16))
            x = x * torch.empty(len(x), 1, 1, 1).uniform_(0.85, 1.15)  # brightness jitter
        if self.normalize:
            x = (x - torch.tensor(self.mean).view(1, -1, 1, 1)) / torch.tensor(self.std).view(1, -1, 1, 1)
        return x

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"in_channels": int(self.channels), "image_size": self.size}


def load_image(source: Path | BinaryIO, size: int, channels: int) -> np.ndarray:
    """An image file (path or open binary file) -> uint8 (C, size, size); transparency composited on white."""
    with Image.open(source) as img:
        img.load()
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")  # transparent areas become white, not black
            img = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img.alpha_composite(rgba)
        img = img.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BILINEAR)
        array = np.array(img, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (C, S, S)


def resolve_path(value: Any, root: Path) -> Path:
    path = Path(str(value).strip())
    return path if path.is_absolute() else root / path


class _FrameProcessor(Processor):
    """Shared by audio and sequences: rows become (N, T, F + 1) frames, the last feature 1 on real frames, 0 on
    padding; features are standardised per feature with statistics of the training frames."""

    column: str
    mean: list[float]
    std: list[float]
    augment: bool = False  # SpecAugment-style masking at train time

    def _frames(self, value: Any, root: Path) -> tuple[np.ndarray, str | None]:
        """One cell -> (frames (t, F), a truncation note or None); raises ValueError/OSError when unreadable."""
        raise NotImplementedError

    def _length(self) -> int:
        raise NotImplementedError

    def fit(self, values: pd.Series, root: Path) -> "_FrameProcessor":
        self._prepare_fit(values, root)
        sample = self.transform(values.head(2000), root)
        frames, mask = sample.values[..., :-1], sample.values[..., -1] > 0  # (n, T, F), (n, T)
        real = frames[mask]  # (frames, F)
        self.mean = real.mean(0).tolist() if len(real) else [0.0] * frames.shape[-1]
        self.std = real.std(0).clamp(min=1e-3).tolist() if len(real) > 1 else [1.0] * frames.shape[-1]
        return self

    def _prepare_fit(self, values: pd.Series, root: Path) -> None:
        """Learn shape facts (feature count, length) before statistics; optional."""

    def transform(self, values: pd.Series, root: Path) -> Transformed:
        length, n_features = self._length(), self._n_features()
        out = torch.zeros(len(values), length, n_features + 1)  # (N, T, F + 1)
        present = torch.ones(len(values), dtype=torch.bool)
        problems = []
        for i, v in enumerate(values):
            if is_empty(v):
                present[i] = False
                problems.append(Problem(i, self.column, EMPTY, f"no {self.modality}"))
                continue
            try:
                frames, note = self._frames(v, root)
            except (OSError, ValueError, RuntimeError) as err:
                present[i] = False
                problems.append(Problem(i, self.column, UNREADABLE, f"cannot read {self.modality} {v}: {err}"))
                continue
            if note:
                problems.append(Problem(i, self.column, TRUNCATED, note))
            t = min(len(frames), length)
            out[i, :t, :-1] = torch.from_numpy(np.ascontiguousarray(frames[:t], dtype=np.float32))
            out[i, :t, -1] = 1.0
        return Transformed(out, present, problems)

    def _n_features(self) -> int:
        raise NotImplementedError

    def prepare_batch(self, x: Tensor, train: bool) -> Tensor:
        frames, mask = x[..., :-1], x[..., -1:]  # (B, T, F), (B, T, 1)
        frames = (frames - torch.tensor(self.mean)) / torch.tensor(self.std) * mask
        if train and self.augment:
            frames = _spec_augment(frames)
        return torch.cat([frames, mask], dim=-1)

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"in_features": self._n_features()}


class AudioProcessor(_FrameProcessor):
    """Audio file paths -> log-mel frames (N, T, n_mels + 1), decoded once: mono, resampled, cropped to
    ``max_seconds``; per-band standardisation and (train) SpecAugment time/frequency masking per batch."""

    kind, modality = "audio", "audio"

    def __init__(self, column: str, sample_rate: int = 16000, max_seconds: float = 2.0, n_mels: int = 64,
                 n_fft: int = 400, hop: int = 160, augment: bool = True):
        self.column, self.sample_rate, self.max_seconds = column, sample_rate, max_seconds
        self.n_mels, self.n_fft, self.hop, self.augment = n_mels, n_fft, hop, augment
        self.mean: list[float] = []
        self.std: list[float] = []
        self._restore()

    def _restore(self) -> None:
        from .audio import mel_filterbank

        self._filterbank = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels)

    def _n_features(self) -> int:
        return self.n_mels

    def _length(self) -> int:
        return frames_for(int(self.max_seconds * self.sample_rate), self.hop)

    def _frames(self, value: Any, root: Path) -> tuple[np.ndarray, str | None]:
        wave = load_audio(resolve_path(value, root), self.sample_rate)
        if len(wave) < self.hop:
            raise ValueError(f"{len(wave) / self.sample_rate:.3f} s long, shorter than one "
                             f"{1000 * self.hop / self.sample_rate:.0f} ms frame")
        limit = int(self.max_seconds * self.sample_rate)
        note = f"{len(wave) / self.sample_rate:.2f} s clip cropped to {self.max_seconds} s" if len(wave) > limit else None
        wave = wave[:limit]
        frames = log_mel(torch.from_numpy(wave), self._filterbank, self.n_fft, self.hop)  # (1 + n // hop, n_mels)
        return frames[: frames_for(len(wave), self.hop)].numpy(), note


class SequenceProcessor(_FrameProcessor):
    """Numeric sequences (a .npy file of shape (T, D) or (T,), or a list-valued cell) -> (N, T, D + 1) frames,
    padded to the longest training sequence (at most ``max_length``); longer ones are cut and reported."""

    kind, modality = "sequence", "sequence"

    def __init__(self, column: str, max_length: int = 256):
        self.column, self.max_length = column, max_length
        self.length, self.n_features = 1, 1
        self.mean: list[float] = []
        self.std: list[float] = []

    def _n_features(self) -> int:
        return self.n_features

    def _length(self) -> int:
        return self.length

    def _read(self, value: Any, root: Path) -> np.ndarray:
        if isinstance(value, (list, tuple, np.ndarray)):
            array = np.asarray(value, dtype=np.float32)
        elif str(value).strip().startswith("["):
            array = np.asarray(json.loads(str(value)), dtype=np.float32)
        else:
            array = np.load(resolve_path(value, root), allow_pickle=False).astype(np.float32)
        array = array[:, None] if array.ndim == 1 else array
        if array.ndim != 2 or len(array) == 0:
            raise ValueError(f"expected a non-empty (steps, features) array, got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError("holds NaN or infinite values")
        return array

    def _prepare_fit(self, values: pd.Series, root: Path) -> None:
        lengths, widths = [], []
        for v in values.head(2000):
            if is_empty(v):
                continue
            try:
                array = self._read(v, root)
            except (OSError, ValueError):
                continue
            lengths.append(len(array))
            widths.append(array.shape[1])
        if widths:
            self.n_features = max(set(widths), key=widths.count)
            self.length = min(max(lengths), self.max_length)

    def _frames(self, value: Any, root: Path) -> tuple[np.ndarray, str | None]:
        array = self._read(value, root)
        if array.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features per step, got {array.shape[1]}")
        note = f"{len(array)} steps cut to {self.length}" if len(array) > self.length else None
        return array, note


def _spec_augment(frames: Tensor, max_time: float = 0.1, max_features: float = 0.125) -> Tensor:
    """SpecAugment-style masking: per row, one band of features and one span of steps set to 0 (the mean).

    frames (B, T, F) -> (B, T, F).
    """
    batch, steps, features = frames.shape
    t = torch.arange(steps).view(1, -1, 1)
    f = torch.arange(features).view(1, 1, -1)
    t_width = torch.randint(0, max(1, int(steps * max_time)) + 1, (batch, 1, 1))
    f_width = torch.randint(0, max(1, int(features * max_features)) + 1, (batch, 1, 1))
    t_start = (torch.rand(batch, 1, 1) * (steps - t_width + 1)).long()
    f_start = (torch.rand(batch, 1, 1) * (features - f_width + 1)).long()
    hidden = ((t >= t_start) & (t < t_start + t_width)) | ((f >= f_start) & (f < f_start + f_width))
    return frames.masked_fill(hidden, 0.0)


def _random_shift(x: Tensor, max_shift: int) -> Tensor:
    """Translate each image by up to ``max_shift`` pixels (edge-replicated): (B, C, S, S) -> (B, C, S, S)."""
    size = x.shape[-1]
    padded = torch.nn.functional.pad(x, [max_shift] * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (len(x), 2))
    return torch.stack([padded[i, :, dy:dy + size, dx:dx + size] for i, (dy, dx) in enumerate(offsets.tolist())])


class TabularProcessor(Processor):
    """Numeric and categorical columns -> float (N, 2 * n_numeric + n_categorical).

    Numeric: median-imputed, standardised value + a 0/1 missing indicator per column. Categorical: ids stored as
    floats, 0 = missing, 1 = unseen category, 2.. = categories seen in training.
    """

    kind, modality = "tabular", "tabular"

    def __init__(self, numeric: list[str], categorical: list[str]):
        self.numeric, self.categorical = list(numeric), list(categorical)
        self.medians: list[float] = []
        self.means: list[float] = []
        self.stds: list[float] = []
        self.categories: list[list[str]] = []

    def fit(self, frame: pd.DataFrame, root: Path) -> "TabularProcessor":
        for col in self.numeric:
            numbers = pd.to_numeric(frame[col], errors="coerce").astype(float)
            median = float(numbers.median()) if numbers.notna().any() else 0.0
            filled = numbers.fillna(median)
            self.medians.append(median)
            self.means.append(float(filled.mean()))
            self.stds.append(float(filled.std(ddof=0)) or 1.0)
        for col in self.categorical:
            counts = frame[col].dropna().astype(str).value_counts()
            self.categories.append([str(c) for c in counts.index])
        self._restore()
        return self

    def _restore(self) -> None:
        self._ids = [{c: i + 2 for i, c in enumerate(cats)} for cats in self.categories]

    def transform(self, frame: pd.DataFrame, root: Path) -> Transformed:
        n = len(frame)
        parts, problems = [], []
        for j, col in enumerate(self.numeric):
            raw = frame[col]
            numbers = pd.to_numeric(raw, errors="coerce").astype(float)
            empty = raw.isna() | raw.astype(str).str.strip().eq("")
            for i in np.flatnonzero(numbers.isna().to_numpy()):
                kind = EMPTY if empty.iloc[i] else UNREADABLE
                detail = "missing number (median imputed)" if kind == EMPTY else f"not a number: {raw.iloc[i]!r}"
                problems.append(Problem(int(i), col, kind, detail))
            missing = numbers.isna().to_numpy()
            values = (numbers.fillna(self.medians[j]).to_numpy() - self.means[j]) / self.stds[j]
            parts += [values, missing.astype(float)]
        for j, col in enumerate(self.categorical):
            ids = np.zeros(n)
            for i, v in enumerate(frame[col]):
                if is_empty(v):
                    problems.append(Problem(i, col, EMPTY, "missing category"))
                else:
                    ids[i] = self._ids[j].get(str(v), 1)
                    if ids[i] == 1:
                        problems.append(Problem(i, col, UNKNOWN, f"category {v!r} not seen in training"))
            parts.append(ids)
        values = torch.tensor(np.stack(parts, axis=1), dtype=torch.float32)  # (N, 2 * n_num + n_cat)
        return Transformed(values, torch.ones(n, dtype=torch.bool), problems)

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"num_numeric": 2 * len(self.numeric), "cardinalities": [len(c) + 2 for c in self.categories]}


def build_processors(columns: list[ColumnInfo], model_cfg: ModelConfig) -> dict[str, Processor]:
    """Unfitted processors keyed by model input name (text/image column names and ``tabular``).

    A column whose encoder brings its own processor (``make_processor``: a pretrained encoder's tokenizer or image
    scaling) gets that one; the others follow the config's ``preprocess`` section.
    """
    from ..model import brings_processor, resolve_encoder
    from ..registry import encoder_class

    cfg = model_cfg.preprocess
    processors: dict[str, Processor] = {}
    for col in columns:
        if col.modality in ("text", "image", "audio", "sequence"):
            enc = resolve_encoder(model_cfg, col.name, col.modality)
            if brings_processor(enc.name):
                processors[col.name] = encoder_class(enc.name).make_processor(col.name, enc.params)
                continue
        if col.modality == "text":
            processors[col.name] = TextProcessor(col.name, **cfg.text.model_dump())
        elif col.modality == "image":
            processors[col.name] = ImageProcessor(col.name, **cfg.image.model_dump())
        elif col.modality == "audio":
            processors[col.name] = AudioProcessor(col.name, **cfg.audio.model_dump())
        elif col.modality == "sequence":
            processors[col.name] = SequenceProcessor(col.name, **cfg.sequence.model_dump())
    numeric = [c.name for c in columns if c.modality == "numeric"]
    categorical = [c.name for c in columns if c.modality == "categorical"]
    if numeric or categorical:
        if TABULAR in processors:
            raise DataError(f"a text/image column may not be named {TABULAR!r} when the table has numeric or "
                            "categorical columns; rename it")
        processors[TABULAR] = TabularProcessor(numeric, categorical)
    return processors


def restore_processors(states: dict[str, dict[str, Any]], cache_dir: str | Path | None) -> dict[str, Processor]:
    """A saved model's processors (``processors.json``), those that cache features pointed at ``cache_dir``."""
    processors = {name: Processor.from_state(state) for name, state in states.items()}
    use_cache_dir(processors, cache_dir)
    return processors


def use_cache_dir(processors: dict[str, Processor], cache_dir: str | Path | None) -> None:
    """Point the processors that cache features (frozen pretrained encoders) at ``cache_dir`` (None: default)."""
    for proc in processors.values():
        if hasattr(proc, "cache_dir"):
            proc.cache_dir = None if cache_dir is None else str(cache_dir)


def input_values(frame: pd.DataFrame, name: str, processor: Processor) -> Any:
    """The slice of the table a processor reads: one column, or the tabular group's columns."""
    if isinstance(processor, TabularProcessor):
        return frame[processor.numeric + processor.categorical]
    return frame[name]
