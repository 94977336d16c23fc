"""A fitted ``Predictor`` as one ONNX graph, and ONNX Runtime as a prediction backend.

    mmfuse export model/ --format onnx --out model.onnx
    Predictor.load("model/", backend="onnx", onnx_path="model.onnx")   # same predictions, onnxruntime inside

The graph holds encoders, fusion and head in fp32 (opset ``OPSET``; its metadata carries the SHA-256 of what it was
exported from, checked at load), with a dynamic batch axis (and a dynamic width for token and n-gram ids): inputs are
the prepared model inputs in sorted name order, then one 0/1 presence vector per input (``<name>__present``); the
output is the logits. A portfolio's graph holds every member the ensemble reads, the weights and the temperatures:
it also takes each input's flat views (``<name>__dense``, ``__embedding``, ``__ids``, ``__categories``: what the
processors give the cheap members), and gives the ensemble's outputs (``outputs``: probabilities, or values for
regression) and each member's (``outputs__<member>``). Linear members run as dense float64 products, LightGBM's trees
as arrays walked in float64 (``portfolio.tree_arrays``: the same decisions as LightGBM to the last bit). Processors
(tokenising, decoding, resizing, normalising, frozen backbones' cached features) stay in Python, as in PyTorch
prediction, as does the task's output function for a single network. Frozen pretrained encoders enter the graph as
their cached features: the backbone is not exported, its projection is.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor, nn

from ..data.dataset import make_loader
from ..errors import ConfigError
from ..nn.export import ExportGraph
from ..portfolio.calibration import temperature_tensor
from ..portfolio.flat import TENSORS, FlatInputs, flat_batch
from .backends import export_fingerprint
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
    """Write a fitted Predictor (its network, or its whole portfolio) as an ONNX file; returns its path. A member
    with no graph form is refused in one line naming it."""
    predictor._check_fitted()
    names = predictor.inputs_
    inputs, present = example_batch(predictor)
    network = predictor._network_member().module()  # the network's export form (inputs in sorted name order)
    in_names = names + [f"{n}__present" for n in names]
    axes: dict[str, dict[int, str]] = {n: {0: "batch"} for n in in_names}
    axes |= {n: {0: "batch", 1: f"{n}_width"} for n in names
             if is_ragged(predictor, n) and not fixed_width(predictor, n)}
    if predictor.portfolio_.lone:
        graph, example, out_names = network, tuple(inputs + present), ["logits"]
    else:
        flat = flat_batch(predictor.pipeline_.processors, dict(zip(names, inputs)),
                          {n: p > 0.5 for n, p in zip(names, present)})
        fields = [(n, f) for n in names for f in TENSORS if getattr(flat.views[n], f) is not None]
        views = [_widened(getattr(flat.views[n], f)) if f == "ids" else getattr(flat.views[n], f) for n, f in fields]
        graph = PortfolioGraph(predictor, network, flat, fields)
        example, out_names = tuple(inputs + present + views), ["outputs", *(f"outputs__{m}" for m in graph.members)]
        in_names += [f"{n}__{f}" for n, f in fields]
        axes |= {f"{n}__{f}": {0: "batch", 1: f"{n}__{f}_width"} if f == "ids" else {0: "batch"} for n, f in fields}
    axes |= {n: {0: "batch"} for n in out_names}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused transformer kernel has no ONNX form
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes it records as constants
            torch.onnx.export(graph, example, str(out), dynamo=False, opset_version=OPSET, input_names=in_names,
                              output_names=out_names, dynamic_axes=axes)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    import onnx

    graph_file = onnx.load(str(out))
    onnx.helper.set_model_props(graph_file, {FINGERPRINT: export_fingerprint(predictor)})
    onnx.save(graph_file, str(out))
    return out


class PortfolioGraph(nn.Module):
    """The members the ensemble reads (fit order, the network last), their weights and the temperatures:
    ``forward(*inputs, *present, *views) -> (outputs, *member outputs)``."""

    def __init__(self, predictor: Predictor, network: ExportGraph, flat: FlatInputs, fields: list[tuple[str, str]]):
        super().__init__()
        portfolio, self.task = predictor.portfolio_, predictor.task_
        self.members = portfolio.needed()
        self.names, self.fields, self.templates = predictor.inputs_, fields, flat.views
        # the member that reads the prepared inputs, not the flat views (the network): ``network`` computes it
        self.network_name = next((m for m in self.members if not portfolio.members[m].reads_views), None)
        self.network = network if self.network_name else None
        cheap = {}
        for name in (m for m in self.members if m != self.network_name):
            try:
                cheap[name] = portfolio.members[name].module()
            except ConfigError as err:
                raise ConfigError(f"cannot export to ONNX: {err}") from None
        self.cheap = nn.ModuleDict(cheap)
        self.reads = {n: portfolio.members[n].fitted_reads() for n in cheap}
        read = sorted({r for names in self.reads.values() for r in names})
        self.stacked = nn.ModuleDict({r: portfolio.members[r].stacked_module() for r in read})
        self.weights, self.temperatures = dict(portfolio.weights), list(portfolio.temperatures)

    def forward(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        m = len(self.names)
        views: dict[str, dict[str, Tensor]] = {n: {} for n in self.names}
        for (name, field), x in zip(self.fields, tensors[2 * m:]):
            views[name][field] = x
        present = {n: p > 0.5 for n, p in zip(self.names, tensors[m:2 * m])}
        flat = FlatInputs({n: replace(v, **views[n]) for n, v in self.templates.items()}, present)
        logits = {} if self.network is None else {self.network_name: self.network(*tensors[:2 * m])}
        fed = {r: module(flat) for r, module in self.stacked.items()}
        for name, member in self.cheap.items():
            logits[name] = member(flat, {r: fed[r] for r in self.reads[name]})
        outputs = {n: self.task.output_tensor(logits[n]) for n in self.members}
        mixed = sum(w * outputs[n].double() for n, w in self.weights.items()).float()
        per_label = self.task.independent_outputs
        final = temperature_tensor(mixed, self.temperatures, per_label=per_label) if self.temperatures else mixed
        return (final, *(outputs[n] for n in self.members))


def _widened(ids: Tensor) -> Tensor:
    """Ids padded (0) by 3 columns, so the exporter keeps their width dynamic (see ``example_batch``)."""
    return torch.nn.functional.pad(ids, (0, 3))
