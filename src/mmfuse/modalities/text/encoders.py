"""Text encoders over token ids (B, L), 0 = padding: ``lstm`` (the seed's), ``gru``, ``transformer``, ``bow``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...nn.bag import embedding_bag
from ...nn.pooling import last_hidden, use_keras_lstm_bias
from ...registry import ENCODERS


class _RecurrentEncoder(nn.Module):
    rnn_cls: type[nn.RNNBase]

    def __init__(self, vocab_size: int, embed_dim: int = 128, hidden_dim: int = 128, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = self.rnn_cls(embed_dim, hidden_dim, num_layers=num_layers, batch_first=True,
                                bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        self.output_dim = hidden_dim * (2 if bidirectional else 1)

    def forward(self, ids: Tensor) -> Tensor:
        """ids (B, L) -> last hidden state (B, output_dim), reading each row only up to its length (an empty row
        reads one padding token)."""
        return last_hidden(self.rnn, self.embed(ids), (ids != 0).sum(1))


@ENCODERS.register("lstm", modality="text")
class LSTMEncoder(_RecurrentEncoder):
    """Embedding + LSTM, the seed's text branch.

    ``keras_bias=True`` matches Keras's LSTM exactly: one bias vector (PyTorch keeps two, the hidden-side one is
    fixed at zero and frozen here) and the forget-gate bias initialised to 1 (Keras ``unit_forget_bias``).
    """

    rnn_cls = nn.LSTM

    def __init__(self, vocab_size: int, embed_dim: int = 128, hidden_dim: int = 128, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, keras_bias: bool = False):
        super().__init__(vocab_size, embed_dim, hidden_dim, num_layers, bidirectional, dropout)
        if keras_bias:
            use_keras_lstm_bias(self.rnn)


@ENCODERS.register("gru", modality="text")
class GRUEncoder(_RecurrentEncoder):
    """Embedding + GRU (optionally bidirectional)."""

    rnn_cls = nn.GRU


@ENCODERS.register("transformer", modality="text")
class TransformerTextEncoder(nn.Module):
    """A small pre-norm transformer trained from scratch, masked mean pooling over tokens."""

    def __init__(self, vocab_size: int, max_length: int = 512, dim: int = 128, depth: int = 2, heads: int = 4,
                 dropout: float = 0.1):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.position = nn.Parameter(torch.zeros(1, max_length, dim))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.output_dim = dim
        self.onnx_width = max_length  # exported at a fixed width (ONNX Runtime's inputs are padded to it)

    def forward(self, ids: Tensor) -> Tensor:
        """ids (B, L) -> (B, dim)."""
        pad = ids == 0
        pad[:, 0] = False  # an empty row attends to one padding token instead of producing NaN
        x = self.embed(ids) + self.position[:, : ids.shape[1]]  # (B, L, dim)
        x = self.norm(self.blocks(x, src_key_padding_mask=pad))
        keep = (~pad).unsqueeze(-1).float()  # (B, L, 1)
        return (x * keep).sum(1) / keep.sum(1)


@ENCODERS.register("bow", modality="text")
class BagOfWordsEncoder(nn.Module):
    """Mean of token embeddings (``nn.EmbeddingBag``): the fastest text encoder, ignores word order."""

    def __init__(self, vocab_size: int, embed_dim: int = 64):
        super().__init__()
        self.embed = nn.EmbeddingBag(vocab_size, embed_dim, mode="mean", padding_idx=0)
        self.output_dim = embed_dim

    def forward(self, ids: Tensor) -> Tensor:
        """ids (B, L) -> (B, embed_dim); an all-padding row gives zeros."""
        return embedding_bag(self.embed, ids)

