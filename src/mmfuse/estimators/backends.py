"""What runs a loaded ``Predictor``'s network and members: PyTorch in this process, or the ONNX graph ``mmfuse
export`` wrote (ONNX Runtime), checked against the fingerprint of what it was exported from."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from ..errors import BundleError


def onnx_backend(predictor: Any, path: Path, onnx_path: str | Path | None) -> Any:
    """The exported graph for a loaded model folder ``path`` (``onnx_path``, default PATH/model.onnx)."""
    from ..nn.onnx_runtime import OnnxNetwork

    graph = Path(onnx_path or path / "model.onnx")
    if not graph.is_file():
        elsewhere = "" if onnx_path else ", or name the file you exported with onnx_path="
        raise BundleError(f"no ONNX graph at {graph}: write it there with `mmfuse export {path} --out "
                          f"{graph}`{elsewhere}")
    return OnnxNetwork(graph, predictor.inputs_, export_fingerprint(predictor), torch.get_num_threads())


def export_fingerprint(predictor: Any) -> str:
    """SHA-256 of what an exported graph is made from (the network's weights, and a portfolio's members, weights
    and temperatures): its metadata carries it, and a load checks it."""
    from ..nn.export import weights_fingerprint

    network = weights_fingerprint(predictor.model_)
    if predictor.portfolio_.lone:
        return network
    return hashlib.sha256((network + predictor.portfolio_.fingerprint()).encode()).hexdigest()
