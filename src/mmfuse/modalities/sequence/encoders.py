"""Sequence encoders over frames (B, T, F + 1) whose last feature is 1 on real steps and 0 on padding:
``seq_conv`` (1-D temporal convolutions + masked pooling), ``seq_gru``, ``seq_lstm`` (the adapted seed's LSTM)."""

from __future__ import annotations

from torch import Tensor, nn

from ...nn.pooling import FrameRNN, masked_mean_max, split_mask, use_keras_lstm_bias
from ...registry import ENCODERS


@ENCODERS.register("seq_conv", modality="sequence")
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


@ENCODERS.register("seq_gru", modality="sequence")
class SequenceGRUEncoder(FrameRNN):
    """A GRU reading the frames directly."""

    rnn_cls = nn.GRU


@ENCODERS.register("seq_lstm", modality="sequence")
class SequenceLSTMEncoder(FrameRNN):
    """An LSTM reading the frames directly: the seed's LSTM(128) with its Embedding dropped, for float sequences
    such as MFCCs. ``keras_bias=True`` gives Keras's exact parameterisation (see ``use_keras_lstm_bias``)."""

    rnn_cls = nn.LSTM

    def __init__(self, in_features: int, hidden_dim: int = 128, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, keras_bias: bool = False):
        super().__init__(in_features, hidden_dim, num_layers, bidirectional, dropout)
        if keras_bias:
            use_keras_lstm_bias(self.rnn)
