"""Audio columns: paths to .wav / .flac / .ogg files, as log-mel frames (no torchaudio); encoders audio_cnn (the
default) and audio_gru."""

from __future__ import annotations

import pandas as pd

from ...core.modality import Cell, Modality, check_files_exist, path_share
from ...registry import MODALITIES, PROCESSORS
from . import encoders  # noqa: F401  (registers the encoders)
from .features import AUDIO_SUFFIXES
from .processor import AudioProcessor


def looks_like_audio(values: pd.Series) -> str | None:
    return "paths ending in .wav/.flac/.ogg" if path_share(values, AUDIO_SUFFIXES) >= 0.8 else None


PROCESSORS.add(AudioProcessor.kind, AudioProcessor)
MODALITIES.add("audio", Modality("audio", input="audio", processor="audio", default_encoder="audio_cnn",
                                 detect=looks_like_audio, priority=31, check=check_files_exist("audio"),
                                 cell=Cell(file=True, widget="file", accept="audio/*")))
