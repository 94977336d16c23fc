"""Audio decoding and log-mel features in numpy/torch (no torchaudio, no librosa).

``load_audio`` reads .wav / .flac / .ogg with soundfile, mixes down to mono and resamples with soxr;
``mel_filterbank`` builds HTK-scale triangular filters; ``log_mel`` is ``log(mel @ |STFT|^2 + 1e-6)``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def load_audio(path: str | Path, sample_rate: int, max_seconds: float | None = None) -> tuple[np.ndarray, float]:
    """A file -> (mono float32 samples at ``sample_rate`` (n,), the file's whole duration in seconds); with
    ``max_seconds`` only the first ``max_seconds`` are read and decoded."""
    import soundfile as sf
    import soxr

    with sf.SoundFile(str(path)) as f:
        rate, total = f.samplerate, f.frames
        keep = total if max_seconds is None else min(total, math.ceil(max_seconds * rate))
        samples = f.read(keep, dtype="float32", always_2d=True)  # (n, channels)
    mono = samples.mean(axis=1)
    if rate != sample_rate and len(mono):
        mono = soxr.resample(mono, rate, sample_rate).astype(np.float32)
    return mono, total / rate


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None) -> Tensor:
    """Triangular filters on the HTK mel scale, (n_fft // 2 + 1, n_mels), unnormalised (as torchaudio's default)."""
    f_max = f_max or sample_rate / 2
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (freqs[:, None] - lower) / (center - lower)
    falling = (upper - freqs[:, None]) / (upper - center)
    return torch.tensor(np.clip(np.minimum(rising, falling), 0, None), dtype=torch.float32)


def log_mel(wave: Tensor, filterbank: Tensor, n_fft: int, hop: int) -> Tensor:
    """Mono wave (n,) -> log-mel frames (1 + n // hop, n_mels), centred Hann-window STFT."""
    spec = torch.stft(wave, n_fft, hop_length=hop, window=torch.hann_window(n_fft), center=True,
                      return_complex=True).abs().pow(2)  # (n_fft // 2 + 1, frames)
    return torch.log(spec.T @ filterbank + 1e-6)


def frames_for(samples: int, hop: int) -> int:
    """How many centred frames hold real samples (frame i is centred on sample i * hop)."""
    return math.ceil(samples / hop)
