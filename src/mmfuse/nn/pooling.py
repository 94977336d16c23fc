"""Pieces the frame and sequence encoders share: frames (B, T, F + 1) whose last feature is the padding mask,
masked pooling, recurrent networks read up to each row's length, and Keras-compatible LSTM biases."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence


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


def last_hidden(rnn: nn.RNNBase, x: Tensor, lengths: Tensor) -> Tensor:
    """Run ``rnn`` over x (B, T, F) reading each row only up to its length (B,); returns (B, H or 2H).

    Always in float32, also under bf16 autocast: on CPU the bf16 recurrent path was slower (5.0 vs 4.3 s per epoch of
    the default GRU on the fortunes table) and held 400 MB more.
    """
    if torch.onnx.is_in_onnx_export():
        return last_hidden_unpacked(rnn, x.float(), lengths.clamp(min=1))
    packed = pack_padded_sequence(x.float(), lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    with torch.autocast(x.device.type, enabled=False):
        _, hidden = rnn(packed)
    hidden = hidden[0] if isinstance(hidden, tuple) else hidden  # LSTM returns (h, c)
    return torch.cat([hidden[-2], hidden[-1]], dim=1) if rnn.bidirectional else hidden[-1]


def reverse_rows(x: Tensor, lengths: Tensor) -> Tensor:
    """Each row's first ``length`` steps in reverse order, its padding left in place: (B, T, F) -> (B, T, F)."""
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, T)
    ends = lengths.unsqueeze(1)  # (B, 1)
    index = torch.where(steps < ends, ends - 1 - steps, steps)  # (B, T)
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


def last_hidden_unpacked(rnn: nn.RNNBase, x: Tensor, lengths: Tensor) -> Tensor:
    """``last_hidden`` without packed sequences (the form ONNX export takes): every layer and direction runs over
    the padded steps, the forward one read at step length - 1, the backward one run on each row's reversed steps
    so that it starts at the row's last real step. Same result: x (B, T, F), lengths (B,) >= 1 -> (B, H or 2H)."""
    last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, rnn.hidden_size)  # (B, 1, H)
    directions = 2 if rnn.bidirectional else 1
    layer_input, finals = x, []
    for layer in range(rnn.num_layers):
        outputs = []
        for direction in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            params = [getattr(rnn, f"{name}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                      if hasattr(rnn, f"{name}{suffix}")]
            steps = reverse_rows(layer_input, lengths) if direction else layer_input
            out = run_one_direction(rnn, steps, params)  # (B, T, H)
            finals.append(out.gather(1, last).squeeze(1))
            outputs.append(reverse_rows(out, lengths) if direction else out)
        layer_input = torch.cat(outputs, dim=-1)
    return torch.cat(finals[-2:], dim=1) if rnn.bidirectional else finals[-1]


def run_one_direction(rnn: nn.RNNBase, x: Tensor, params: list[Tensor]) -> Tensor:
    """One layer, one direction of ``rnn``'s kind (GRU or LSTM) with the given weights, from a zero state:
    x (B, T, F) -> outputs (B, T, H)."""
    h0 = x.new_zeros(1, x.shape[0], rnn.hidden_size)
    if isinstance(rnn, nn.LSTM):
        return torch._VF.lstm(x, (h0, h0), params, rnn.bias, 1, 0.0, False, False, True)[0]
    return torch._VF.gru(x, h0, params, rnn.bias, 1, 0.0, False, False, True)[0]


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


class FrameRNN(nn.Module):
    """A GRU or LSTM (``rnn_cls``) reading frames (B, T, F + 1) directly, each row up to its length."""

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
