"""Audio encoders over log-mel frames (B, T, n_mels + 1), last feature the padding mask: ``audio_cnn`` (2-D
convolutions over the spectrogram, the default) and ``audio_gru``."""

from __future__ import annotations

from torch import Tensor, nn

from ...nn.pooling import FrameRNN, masked_mean_max, split_mask
from ...registry import ENCODERS


@ENCODERS.register("audio_cnn", modality="audio")
class SpectrogramCNN(nn.Module):
    """Conv(3x3) + BatchNorm + ReLU + MaxPool(2) blocks over the (mel, time) plane, padding re-zeroed after every
    block, mean over mel bands, then masked mean + max over time."""

    def __init__(self, in_features: int, widths: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        channels = [1, *widths]
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))
            for c_in, c_out in zip(channels, channels[1:]))
        self.output_dim = 2 * channels[-1]

    def forward(self, frames: Tensor) -> Tensor:
        """frames (B, T, n_mels + 1) -> (B, 2 * widths[-1])."""
        x, mask = split_mask(frames)
        h = (x * mask.unsqueeze(-1)).transpose(1, 2).unsqueeze(1)  # (B, 1, mels, T)
        for block in self.blocks:
            h = block(h) * mask[:, None, None, :]  # ReLU output >= 0, so zeroed padding never wins the max-pool
            h = nn.functional.max_pool2d(h, 2, ceil_mode=True)
            mask = nn.functional.max_pool1d(mask.unsqueeze(1), 2, ceil_mode=True).squeeze(1)  # (B, T')
        return masked_mean_max(h.mean(2).transpose(1, 2), mask)  # (B, T', C) pooled over real steps


@ENCODERS.register("audio_gru", modality="audio")
class AudioGRUEncoder(FrameRNN):
    """A GRU over log-mel frames."""

    rnn_cls = nn.GRU
