"""The network as one graph of plain tensors, for ONNX: ``ExportGraph(model, names)(*inputs, *present) -> logits``.

Inputs are the prepared model inputs in ``names`` order (sorted input names) followed by one float presence vector
(B,) per input; encoders run in their dense form (every row, absent rows zeroed), which gives the same outputs as
training's skip-absent-rows form. Preprocessing (processors) and the task's output function stay outside the graph.
"""

from __future__ import annotations

import hashlib

from torch import Tensor, nn

from .model import MultiModalModel


class ExportGraph(nn.Module):
    def __init__(self, model: MultiModalModel, names: list[str]):
        super().__init__()
        self.model, self.names = model, list(names)

    def forward(self, *tensors: Tensor) -> Tensor:
        """tensors: M prepared inputs (B, ...), then M presence vectors (B,) of 0/1 -> logits (B, out_dim)."""
        m = len(self.names)
        inputs = dict(zip(self.names, tensors[:m]))
        present = {n: p > 0.5 for n, p in zip(self.names, tensors[m:])}
        return self.model(inputs, present).logits


def dense(model: MultiModalModel) -> MultiModalModel:
    """The model switched to its export form (and eval mode)."""
    model.dense = True
    return model.eval()


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 of a network's weights (names, shapes and fp32 values): ties an exported graph to its model."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()
