"""Helpers shared by the recurrent encoders (text, sequence, audio): last hidden state over padded rows, and
Keras-compatible LSTM biases."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence


def last_hidden(rnn: nn.RNNBase, x: Tensor, lengths: Tensor) -> Tensor:
    """Run ``rnn`` over x (B, T, F) reading each row only up to its length (B,); returns (B, H or 2H)."""
    packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    _, hidden = rnn(packed)
    hidden = hidden[0] if isinstance(hidden, tuple) else hidden  # LSTM returns (h, c)
    return torch.cat([hidden[-2], hidden[-1]], dim=1) if rnn.bidirectional else hidden[-1]


def use_keras_lstm_bias(lstm: nn.LSTM) -> None:
    """Match Keras's LSTM: one bias vector per gate (PyTorch's hidden-side bias is zeroed and frozen) and the
    forget-gate bias initialised to 1 (Keras ``unit_forget_bias``); gate order i, f, g, o."""
    hidden = lstm.hidden_size
    for name, param in lstm.named_parameters():
        if name.startswith("bias_hh"):
            nn.init.zeros_(param)
            param.requires_grad_(False)
        elif name.startswith("bias_ih"):
            nn.init.zeros_(param)
            param.data[hidden:2 * hidden] = 1.0
