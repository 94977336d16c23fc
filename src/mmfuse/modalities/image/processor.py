"""Image file paths -> uint8 (N, C, S, S) decoded once; batches are scaled, normalised and (train) augmented."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
from PIL import UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from ...core.modality import file_cell, is_empty
from ...core.processor import (EMPTY, UNREADABLE, Corruption, FlatView, Problem, Processor, Progress, Transformed,
                               with_progress)
from ...io.images import MAX_PIXELS, WIDE_MODES, load_image, open_image
from .corruptions import image_blur, image_noise, image_occlusion


class ImageParams(BaseModel):
    """``preprocess.image`` settings."""

    model_config = ConfigDict(extra="forbid")
    size: int = Field(64, ge=8)
    channels: Literal["auto", 1, 3] = "auto"
    normalize: bool = True
    augment: bool = True
    max_pixels: int = Field(MAX_PIXELS, ge=1)  # larger images (by their header) are unreadable values


def is_colour(value: Any, root: Path) -> bool:
    """Whether an image file's mode has colour (read from its header; unreadable files count as grey)."""
    try:
        with open_image(file_cell(value, root)) as img:
            return img.mode not in ("L", "LA", "1", *WIDE_MODES)
    except (OSError, ValueError, UnidentifiedImageError):  # ValueError: too large, or a path with a NUL byte
        return False


def has_colour(values: pd.Series, root: Path, sample: int = 500) -> bool:
    """Whether any of the first ``sample`` images of a column has colour."""
    return any(is_colour(v, root) for v in values.head(sample) if not is_empty(v))


FIT_SAMPLE = 2000


class ImageProcessor(Processor):
    """Images resized to ``size`` x ``size``; ``channels`` auto = 3 if any of the first training images has
    colour, else 1; per-channel mean/std of the first ``FIT_SAMPLE`` training images for normalisation (read in
    chunks, so fitting takes little memory at any image size or table length)."""

    kind, modality, Params = "image", "image", ImageParams
    streamable = True

    def __init__(self, column: str, size: int = 64, channels: str | int = "auto", normalize: bool = True,
                 augment: bool = True, max_pixels: int = MAX_PIXELS):
        self.column, self.size, self.channels = column, size, channels
        self.normalize, self.augment, self.max_pixels = normalize, augment, max_pixels

    def fit(self, values: pd.Series, root: Path, progress: Progress | None = None) -> "ImageProcessor":
        if self.channels == "auto":
            self.channels_ = 3 if has_colour(values, root) else 1
        else:
            self.channels_ = int(self.channels)
        count, total, squares = 0, torch.zeros(self.channels_, dtype=torch.float64), 0
        sample = values.head(FIT_SAMPLE)
        for start in range(0, len(sample), 256):  # chunks: memory stays small at any image size
            chunk = self.transform(sample.iloc[start:start + 256], root)
            pixels = chunk.values[chunk.present].double() / 255  # (n, C, S, S)
            count += pixels.numel() // self.channels_
            total = total + pixels.sum((0, 2, 3))
            squares = squares + (pixels ** 2).sum((0, 2, 3))
            if progress:
                progress(f"image statistics of {self.column!r}", min(start + 256, len(sample)), len(sample))
        if count > 1:
            mean = total / count
            self.mean_ = mean.float().tolist()
            variance = ((squares - count * mean ** 2) / (count - 1)).clamp(min=0)
            self.std_ = variance.sqrt().clamp(min=1e-3).float().tolist()
        else:
            self.mean_, self.std_ = [0.5] * self.channels_, [0.25] * self.channels_
        return self

    def transform(self, values: pd.Series, root: Path, progress: Progress | None = None) -> Transformed:
        images = torch.zeros(len(values), self.channels_, self.size, self.size, dtype=torch.uint8)
        present = torch.ones(len(values), dtype=torch.bool)
        problems = []
        for i, v in with_progress(values, progress, f"reading images of {self.column!r}"):
            if is_empty(v):
                present[i] = False
                problems.append(Problem(i, self.column, EMPTY, "no image path"))
                continue
            try:
                images[i] = torch.from_numpy(load_image(file_cell(v, root), self.size, self.channels_,
                                                         self.max_pixels))
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
            x = random_shift(x, max_shift=max(1, self.size // 16))
            x = x * torch.empty(len(x), 1, 1, 1).uniform_(0.85, 1.15)  # brightness jitter
        if self.normalize:
            x = (x - torch.tensor(self.mean_).view(1, -1, 1, 1)) / torch.tensor(self.std_).view(1, -1, 1, 1)
        return x

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"in_channels": self.channels_, "image_size": self.size}

    def flat(self, x: Tensor) -> FlatView:
        """Pooled pixels: 16 x 16 per grayscale image, 8 x 8 per colour channel (B, 256 or 192)."""
        return FlatView(dense=pooled_pixels(x))

    def corruptions(self) -> dict[str, Corruption]:
        return {"noise": image_noise, "blur": image_blur, "occlusion": image_occlusion}


def pooled_pixels(x: Tensor) -> Tensor:
    """(B, C, S, S) pixels averaged to 16 x 16 (one channel) or 8 x 8 (several), flattened."""
    side = min(x.shape[-1], 16 if x.shape[1] == 1 else 8)
    return torch.nn.functional.adaptive_avg_pool2d(x.float(), side).flatten(1)


def random_shift(x: Tensor, max_shift: int) -> Tensor:
    """Translate each image by up to ``max_shift`` pixels (edge-replicated): (B, C, S, S) -> (B, C, S, S)."""
    size = x.shape[-1]
    padded = torch.nn.functional.pad(x, [max_shift] * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (len(x), 2))
    return torch.stack([padded[i, :, dy:dy + size, dx:dx + size] for i, (dy, dx) in enumerate(offsets.tolist())])
