"""ONNX Runtime in place of the PyTorch network (logits) or of a whole portfolio (the ensemble's and each member's
outputs), from a graph exported by ``estimators.onnx``."""

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
        self.accepts = {i.name for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        self.members = [o[len("outputs__"):] for o in outputs if o.startswith("outputs__")]  # a portfolio's graph

    def logits(self, inputs: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        """A network graph's logits (B, K) for prepared inputs (B, ...) and presence (B,); ids trimmed to a batch's
        longest row are padded (0 = padding) to a fixed width the graph takes."""
        return torch.from_numpy(self.session.run(["logits"], self._feed(inputs, present, {}))[0])

    def outputs(self, inputs: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
                views: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A portfolio graph's outputs (B, K): ``"ensemble"`` and each member's, from the prepared inputs, presence
        and flat views (``<input>__<field>``)."""
        found = self.session.run(None, self._feed(inputs, present, views))
        names = ["ensemble", *self.members]
        return {n: torch.from_numpy(x) for n, x in zip(names, found)}

    def _feed(self, inputs: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
              views: dict[str, torch.Tensor]) -> dict[str, Any]:
        feed: dict[str, Any] = {n: _numpy(_pad(inputs[n], self.widths.get(n))) for n in self.names}
        feed |= {f"{n}__present": present[n].float().numpy() for n in self.names}
        feed |= {n: _numpy(x) for n, x in views.items()}
        return {n: x for n, x in feed.items() if n in self.accepts}  # the exporter drops inputs a graph never reads


def _pad(x: torch.Tensor, width: Any) -> torch.Tensor:
    if isinstance(width, int) and x.dim() == 2 and x.shape[1] < width:
        return torch.nn.functional.pad(x, (0, width - x.shape[1]))
    return x


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.float().numpy() if x.is_floating_point() else x.numpy()
