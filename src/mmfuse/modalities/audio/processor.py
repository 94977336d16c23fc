"""Audio file paths -> log-mel frames (N, T, n_mels + 1), decoded once: mono, resampled, cropped to ``max_seconds``;
per-band standardisation and (train) SpecAugment time/frequency masking per batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from ...core.frames import FrameProcessor
from ...core.modality import file_cell
from .features import frames_for, load_audio, log_mel, mel_filterbank


class AudioParams(BaseModel):
    """``preprocess.audio`` settings."""

    model_config = ConfigDict(extra="forbid")
    sample_rate: int = Field(16000, ge=1000)
    max_seconds: float = Field(2.0, gt=0)
    n_mels: int = Field(64, ge=4)
    n_fft: int = Field(400, ge=16)
    hop: int = Field(160, ge=1)
    augment: bool = True


class AudioProcessor(FrameProcessor):
    kind, modality, Params = "audio", "audio", AudioParams

    def __init__(self, column: str, sample_rate: int = 16000, max_seconds: float = 2.0, n_mels: int = 64,
                 n_fft: int = 400, hop: int = 160, augment: bool = True):
        self.column, self.sample_rate, self.max_seconds = column, sample_rate, max_seconds
        self.n_mels, self.n_fft, self.hop, self.augment = n_mels, n_fft, hop, augment
        self._setup()

    def _setup(self) -> None:
        self._filterbank = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels)

    def _n_features(self) -> int:
        return self.n_mels

    def _length(self) -> int:
        return frames_for(int(self.max_seconds * self.sample_rate), self.hop)

    def _frames(self, value: Any, root: Path) -> tuple[np.ndarray, str | None]:
        wave, seconds = load_audio(file_cell(value, root), self.sample_rate, self.max_seconds)
        if len(wave) < self.hop:
            raise ValueError(f"{len(wave) / self.sample_rate:.3f} s long, shorter than one "
                             f"{1000 * self.hop / self.sample_rate:.0f} ms frame")
        note = f"{seconds:.2f} s clip cropped to {self.max_seconds} s" if seconds > self.max_seconds else None
        wave = wave[: int(self.max_seconds * self.sample_rate)]
        frames = log_mel(torch.from_numpy(wave), self._filterbank, self.n_fft, self.hop)  # (1 + n // hop, n_mels)
        return frames[: frames_for(len(wave), self.hop)].numpy(), note
