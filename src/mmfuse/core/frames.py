"""The frame layout audio and sequence inputs share: rows become (N, T, F + 1) frames whose last feature is 1 on
real steps and 0 on padding. The shared processor base, SpecAugment masking, and frame corruptions live here so
the two modality plugins need not import each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .modality import is_empty
from .processor import (EMPTY, TRUNCATED, UNREADABLE, Corruption, FlatView, Problem, Processor, Progress, Transformed,
                        with_progress)


CLIP = 1e4  # standardised values beyond this many standard deviations are clipped


class FrameProcessor(Processor):
    """Rows -> (N, T, F + 1) frames; features standardised per feature with statistics of the training frames
    (clipped at +-CLIP standard deviations).

    Subclasses read one cell (``_frames``) and give the stored length and feature count; ``augment`` turns on
    SpecAugment-style masking at train time.
    """

    column: str
    augment: bool = False
    streamable = True

    def _frames(self, value: Any, root: Path) -> tuple[np.ndarray, str | None]:
        """One cell -> (frames (t, F), a truncation note or None); raises ValueError/OSError when unreadable."""
        raise NotImplementedError

    def _length(self) -> int:
        raise NotImplementedError

    def _n_features(self) -> int:
        raise NotImplementedError

    def _prepare_fit(self, values: pd.Series, root: Path) -> None:
        """Learn shape facts (feature count, length) before statistics; optional."""

    def fit(self, values: pd.Series, root: Path, progress: Progress | None = None) -> "FrameProcessor":
        self._prepare_fit(values, root)
        sample = self.transform(values.head(2000), root)
        frames, mask = sample.values[..., :-1], sample.values[..., -1] > 0  # (n, T, F), (n, T)
        real = frames[mask]  # (frames, F)
        self.mean_ = real.mean(0).tolist() if len(real) else [0.0] * frames.shape[-1]
        self.std_ = real.std(0).clamp(min=1e-3).tolist() if len(real) > 1 else [1.0] * frames.shape[-1]
        return self

    def transform(self, values: pd.Series, root: Path, progress: Progress | None = None) -> Transformed:
        length, n_features = self._length(), self._n_features()
        out = torch.zeros(len(values), length, n_features + 1)  # (N, T, F + 1)
        present = torch.ones(len(values), dtype=torch.bool)
        problems = []
        for i, v in with_progress(values, progress, f"reading {self.modality} of {self.column!r}"):
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

    def prepare_batch(self, x: Tensor, train: bool) -> Tensor:
        frames, mask = x[..., :-1], x[..., -1:]  # (B, T, F), (B, T, 1)
        frames = (frames - torch.tensor(self.mean_)) / torch.tensor(self.std_) * mask
        frames = frames.nan_to_num(0.0).clamp(-CLIP, CLIP)  # float32 overflow of absurd values, not data
        if train and self.augment:
            frames = spec_augment(frames)
        return torch.cat([frames, mask], dim=-1)

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"in_features": self._n_features()}

    def flat(self, x: Tensor) -> FlatView:
        """Per row: each feature's mean and standard deviation over the real steps, and the log length (B, 2F + 1)."""
        frames, mask = x[..., :-1], x[..., -1:]  # (B, T, F), (B, T, 1)
        steps = mask.sum(1).clamp(min=1)  # (B, 1)
        mean = frames.sum(1) / steps
        std = (((frames - mean.unsqueeze(1)) * mask) ** 2).sum(1).div(steps).sqrt()
        return FlatView(dense=torch.cat([mean, std, steps.log()], dim=1))

    def corruptions(self) -> dict[str, Corruption]:
        return {"noise": frames_noise, "time mask": frames_time_mask}


def spec_augment(frames: Tensor, max_time: float = 0.1, max_features: float = 0.125) -> Tensor:
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


def frames_noise(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """(B, T, F + 1) standardised frames + Gaussian noise of 2 * level, on real steps only."""
    noise = 2 * level * torch.randn(x[..., :-1].shape, generator=gen) * x[..., -1:]
    return torch.cat([x[..., :-1] + noise, x[..., -1:]], dim=-1)


def frames_time_mask(x: Tensor, level: float, gen: torch.Generator) -> Tensor:
    """A span of ``level`` of each row's real steps blanked (features 0 = the mean; the steps stay)."""
    out = x.clone()
    for i, steps in enumerate(x[..., -1].sum(1).long().tolist()):
        span = round(level * steps)
        start = int(torch.randint(0, steps - span + 1, (1,), generator=gen)) if steps else 0
        out[i, start:start + span, :-1] = 0
    return out
