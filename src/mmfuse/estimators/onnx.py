"""A fitted ``Predictor``'s network as an ONNX graph, and ONNX Runtime as a prediction backend.

    mmfuse export model/ --format onnx --out model.onnx
    Predictor.load("model/", backend="onnx", onnx_path="model.onnx")   # same predictions, onnxruntime inside

The graph holds encoders, fusion and head in fp32 (opset ``OPSET``; its metadata carries the SHA-256 of the
weights, checked at load), with a dynamic batch axis (and a dynamic width for token and n-gram ids): inputs are
the prepared model inputs in sorted name order, then one 0/1 presence vector per input
(``<name>__present``); the output is the logits. Processors (tokenising, decoding, resizing, normalising, frozen
backbones' cached features) and the task's output function (softmax, sigmoid, scaling) stay in Python, as in
PyTorch prediction. Frozen pretrained encoders enter the graph as their cached features: the backbone is not
exported, its projection is.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pandas as pd
import torch

from ..data.dataset import make_loader
from ..nn.export import ExportGraph, dense, weights_fingerprint
from .predictor import Predictor

OPSET = 17
FINGERPRINT = "mmfuse_weights_sha256"  # graph metadata: the weights it was exported from


def example_batch(predictor: Predictor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Prepared inputs and presence of two empty rows: the shapes the graph is traced with. Ragged (B, W) inputs
    (ids trimmed to a batch's longest row) get 3 more padding columns: a width of 1 would let the exporter fold
    transposes over it into fixed reshapes."""
    needed = [c.name for c in predictor.columns_ if c.modality != "ignore"]
    frame = pd.DataFrame({c: [None, None] for c in needed})
    split = predictor.pipeline_.transform(frame, Path.cwd(), "mask", "export")
    batch = next(iter(make_loader(predictor.pipeline_.dataset(split), 2, shuffle=False)))
    names = predictor.inputs_
    inputs = []
    for n in names:
        x = batch.inputs[n]
        if is_ragged(predictor, n):
            width = fixed_width(predictor, n) or x.shape[1] + 3
            x = torch.nn.functional.pad(x, (0, width - x.shape[1]))
        inputs.append(x)
    return inputs, [batch.present[n].float() for n in names]


def is_ragged(predictor: Predictor, name: str) -> bool:
    return predictor.pipeline_.processors[name].ragged


def fixed_width(predictor: Predictor, name: str) -> int | None:
    """The width an encoder must be exported at (``onnx_width``: the transformer, whose attention reshapes the
    legacy exporter fixes at the traced length), or None for a dynamic one."""
    return getattr(predictor.model_.encoders[name], "onnx_width", None)


def export_onnx(predictor: Predictor, path: str | Path) -> Path:
    """Write the network of a fitted Predictor as an ONNX file (fp32); returns its path."""
    predictor._check_fitted()
    names = predictor.inputs_
    inputs, present = example_batch(predictor)
    graph = ExportGraph(dense(copy.deepcopy(predictor.model_).cpu()).float(), names)
    axes: dict[str, dict[int, str]] = {n: {0: "batch"} for n in [*names, *(f"{n}__present" for n in names), "logits"]}
    axes |= {n: {0: "batch", 1: f"{n}_width"} for n in names
             if is_ragged(predictor, n) and not fixed_width(predictor, n)}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused transformer kernel has no ONNX form
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes it records as constants
            torch.onnx.export(graph, tuple(inputs + present), str(out), dynamo=False, opset_version=OPSET,
                              input_names=names + [f"{n}__present" for n in names], output_names=["logits"],
                              dynamic_axes=axes)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    import onnx

    graph_file = onnx.load(str(out))
    onnx.helper.set_model_props(graph_file, {FINGERPRINT: weights_fingerprint(predictor.model_)})
    onnx.save(graph_file, str(out))
    return out
