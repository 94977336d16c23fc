"""Sequence encoders over frames (B, T, F + 1) whose last feature is 1 on real steps and 0 on padding:
``seq_conv`` (1-D temporal convolutions + masked pooling), ``seq_gru``, ``seq_lstm`` (the adapted seed's LSTM)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import register_encoder
from .recurrent import last_hidden, use_keras_lstm_bias


def split_mask(frames: Tensor) -> tuple[Tensor, Tensor]:
    """(B, T, F + 1) -> features (B, T, F) and the padding mask (B, T) as floats."""
    return frames[..., :-1], frames[..., -1]


def masked_mean_max(x: Tensor, mask: Tensor) -> Tensor:
    """Mean and max over real steps: x (B, T, C), mask (B, T) -> (B, 2C)."""
    weights = mask.unsqueeze(-1)  # (B, T, 1)
    mean = (x * weights).sum(1) / weights.sum(1).clamp(min=1)
    peak = x.masked_fill(weights == 0, float("-inf")).amax(1)
    peak = peak.masked_fill(~peak.isfinite(), 0.0)  # a row with no real step
    return torch.cat([mean, peak], dim=-1)


@register_encoder("seq_conv", modality="sequence")
class TemporalConvEncoder(nn.Module):
    """Stacked 1-D convolutions over time (same padding, BatchNorm, GELU), padding re-zeroed after every layer so
    no real step ever sees it, then masked mean + max pooling over steps."""

    def __init__(self, in_features: int, hidden_dim: int = 128, depth: int = 2, kernel_size: int = 5,
                 dropout: float = 0.1):
        super().__init__()
        widths = [in_features] + [hidden_dim] * depth
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv1d(w_in, w_out, kernel_size, padding=kernel_size // 2), nn.BatchNorm1d(w_out),
                          nn.GELU(), nn.Dropout(dropout)) for w_in, w_out in zip(widths, widths[1:]))
        self.output_dim = 2 * hidden_dim

    def forward(self, frames: Tensor) -> Tensor:
        """frames (B, T, F + 1) -> (B, 2 * hidden_dim)."""
        x, mask = split_mask(frames)
        keep = mask.unsqueeze(1)  # (B, 1, T)
        h = x.transpose(1, 2) * keep  # (B, F, T)
        for layer in self.layers:
            h = layer(h) * keep
        return masked_mean_max(h.transpose(1, 2), mask)


class _SequenceRNN(nn.Module):
    rnn_cls: type[nn.RNNBase]

    def __init__(self, in_features: int, hidden_dim: int = 128, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        self.rnn = self.rnn_cls(in_features, hidden_dim, num_layers=num_layers, batch_first=True,
                                bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        self.output_dim = hidden_dim * (2 if bidirectional else 1)

    def forward(self, frames: Tensor) -> Tensor:
        """frames (B, T, F + 1) -> last hidden state (B, output_dim), each row read up to its length."""
        x, mask = split_mask(frames)
        return last_hidden(self.rnn, x, mask.sum(1).long())


@register_encoder("seq_gru", modality="sequence")
class SequenceGRUEncoder(_SequenceRNN):
    """A GRU reading the frames directly."""

    rnn_cls = nn.GRU


@register_encoder("seq_lstm", modality="sequence")
class SequenceLSTMEncoder(_SequenceRNN):
    """An LSTM reading the frames directly: the seed's LSTM(128) with its Embedding dropped, for float sequences
    such as MFCCs. ``keras_bias=True`` gives Keras's exact parameterisation (see ``use_keras_lstm_bias``)."""

    rnn_cls = nn.LSTM

    def __init__(self, in_features: int, hidden_dim: int = 128, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, keras_bias: bool = False):
        super().__init__(in_features, hidden_dim, num_layers, bidirectional, dropout)
        if keras_bias:
            use_keras_lstm_bias(self.rnn)
