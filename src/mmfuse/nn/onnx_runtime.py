"""ONNX Runtime in place of the PyTorch network: the same call, logits from an exported graph (see
``estimators.onnx``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import BundleError, ConfigError


class OnnxNetwork:
    """Runs an exported graph with onnxruntime in place of the PyTorch model (``MultiModalModel``'s call)."""

    def __init__(self, path: str | Path, names: list[str], fingerprint: str, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError("backend='onnx' needs onnxruntime: pip install 'mmfuse[onnx]'") from None
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own types for a missing or broken file
            raise BundleError(f"cannot load the ONNX graph {path}: {str(err).splitlines()[0]}") from None
        exported_from = self.session.get_modelmeta().custom_metadata_map.get("mmfuse_weights_sha256")
        if exported_from != fingerprint:
            raise BundleError(f"{path} was not exported from this model (its weights differ): run mmfuse export again")
        self.names = names
        self.widths = {i.name: i.shape[1] for i in self.session.get_inputs() if len(i.shape) == 2}  # int: fixed

    def logits(self, inputs: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        """The graph's logits (B, K) for prepared inputs (B, ...) and presence (B,); ids trimmed to a batch's
        longest row are padded (0 = padding) to a fixed width the graph takes."""
        feed: dict[str, Any] = {n: _numpy(_pad(inputs[n], self.widths.get(n))) for n in self.names}
        feed |= {f"{n}__present": present[n].float().numpy() for n in self.names}
        return torch.from_numpy(self.session.run(["logits"], feed)[0])


def _pad(x: torch.Tensor, width: Any) -> torch.Tensor:
    if isinstance(width, int) and x.dim() == 2 and x.shape[1] < width:
        return torch.nn.functional.pad(x, (0, width - x.shape[1]))
    return x


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.float().numpy() if x.is_floating_point() else x.numpy()
