"""``mmfuse sweep``: every unimodal baseline and every fusion method (the network alone), every cheap portfolio member
alone and the portfolio of them all, same preset and budget, several seeds.

Each run is its own process (so its peak memory is its own). The winner is the best mean validation score; the
table also reports test scores, parameters, training time, inference latency per row, peak memory and MultiBench's
robustness measures on the test split: relative robustness (mean area under the run's corruption curves) and
effective robustness against a reference run (late fusion, as in MultiBench) on the same corruptions. The winner's
first-seed model is saved as ``OUT/best`` and every run's figures in ``OUT/results.json``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import resource
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.detect import detect_columns
from ..data.table import read_table
from ..errors import DataError
from ..estimators import Predictor
from ..pipeline import input_of
from ..portfolio.network import NetworkMember
from .robustness import effective_robustness, relative_robustness, robustness


@dataclass
class RunSpec:
    name: str                # e.g. "image only" or "fusion gated"
    options: dict[str, Any]  # Predictor keyword arguments
    member_alone: bool = False  # one member on its own, which may not apply to the table (skipped, not an error)


def sweep_specs(columns: dict[str, list[str]], fusions: list[str], members: list[str] = ()) -> list[RunSpec]:
    """Unimodal runs (one input's columns kept) and one run per fusion method, each the network alone; then one run
    per cheap portfolio member alone and the portfolio of them all with the network.

    Args:
        columns: input name -> the table columns it reads (tabular: every numeric and categorical column).
        fusions: fusion method names.
        members: cheap learners (``registry.MEMBERS``) to run alone and in the portfolio; none: no such runs.
    """
    network = {"members": [NetworkMember.name]}
    all_columns = [c for cols in columns.values() for c in cols]
    specs = [RunSpec(f"{name} only", {"ignore": [c for c in all_columns if c not in cols], **network})
             for name, cols in sorted(columns.items())] if len(columns) > 1 else []
    specs += [RunSpec(f"fusion {f}", {"fusion": f, **network}) for f in fusions]
    if members:
        specs += [RunSpec(f"member {m}", {"members": [m]}, member_alone=True) for m in members]
        specs.append(RunSpec("portfolio", {"members": [*members, NetworkMember.name]}))
    return specs


def plan_sweep(train: str, label: str, fusions: list[str], ignore: list[str] = (),
               members: list[str] = ()) -> list[RunSpec]:
    """The runs for a training table: one per input (its columns only), one per fusion method, one per member and
    the portfolio."""
    table = read_table(train, "train")
    if label not in table.frame.columns:
        raise DataError(f"train: label column {label!r} not found")
    columns: dict[str, list[str]] = {}
    for col in detect_columns(table.frame, label, table.root, ignore=list(ignore)):
        if col.modality != "ignore":
            columns.setdefault(input_of(col)[0], []).append(col.name)
    return sweep_specs(columns, fusions, members)


def _run(spec: RunSpec, seed: int, label: str, data: dict[str, str], base: dict[str, Any], out: str) -> dict:
    """Worker (in a fresh process): fit, score valid and test, time inference, save the model."""
    options = {**base, **spec.options, "ignore": [*base.get("ignore", []), *spec.options.get("ignore", [])]}
    predictor = Predictor(label=label, seed=seed, progress=False, verbose=False, **options)
    start = time.perf_counter()
    try:
        predictor.fit(data["train"], valid=data.get("valid"))
    except DataError as err:  # a member alone that does not apply to this table (e.g. no frozen embeddings)
        if not spec.member_alone:
            raise
        return {"name": spec.name, "seed": seed, "skipped": str(err)}
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    test = predictor.evaluate(data["test"])
    latency = (time.perf_counter() - start) / len(read_table(data["test"], "test"))  # reading + decoding + model
    path = Path(out) / "runs" / f"{spec.name.replace(' ', '_')}_seed{seed}"
    predictor.save(path)
    curves = robustness(predictor, data["test"], max_shapley_inputs=0, seed=seed).curves
    metric = predictor.task_.report_metric
    trained = bool(predictor.history_)  # a member alone (not the network) has no network parameters to count
    return {"name": spec.name, "seed": seed, "metric": metric, "valid": predictor.metrics_["valid"][metric],
            "test": test[metric], "parameters": predictor.metrics_["parameters"] if trained else float("nan"),
            "fit_seconds": fit_seconds,
            "latency_ms": 1000 * latency, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "curves": curves, "path": str(path)}


def run_sweep(label: str, train: str, test: str, valid: str | None, specs: list[RunSpec], seeds: list[int],
              base: dict[str, Any], out: str | Path, on_result=None) -> tuple[list[dict], str]:
    """Run every spec for every seed, each in a fresh process; returns per-run results and the winner's name."""
    data = {"train": str(train), "test": str(test), **({"valid": str(valid)} if valid else {})}
    results, skipped = [], []
    # each run in a fresh process (its own peak memory, nothing shared between runs), forked from a server that has
    # imported mmfuse once: a spawned process spent ~2 s of each run importing torch, pandas and scikit-learn
    context = mp.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    for spec in specs:
        for seed in seeds:
            with context.Pool(1) as pool:
                result = pool.apply(_run, (spec, seed, label, data, base, str(out)))
            (skipped if "skipped" in result else results).append(result)
            if on_result:
                on_result(result)
    summary = summarise(results)
    (Path(out) / "results.json").write_text(json.dumps({"runs": results, "summary": summary, "skipped": skipped},
                                                       indent=1))
    winner = max(summary, key=lambda name: summary[name]["valid"][0])
    best = Path(out) / "best"
    if best.exists():
        shutil.rmtree(best)
    shutil.copytree(next(r["path"] for r in results if r["name"] == winner), best)
    return results, winner


def mean_effective_robustness(curves: dict, reference: dict) -> float:
    """Mean effective robustness over the (input, corruption) curves a run shares with the reference run."""
    shared = [(i, c) for i, cs in curves.items() for c in cs if c in reference.get(i, {})]
    return float(np.mean([effective_robustness(curves[i][c], reference[i][c]) for i, c in shared]))


def summarise(results: list[dict], reference: str = "fusion late") -> dict[str, dict[str, tuple[float, float]]]:
    """name -> field -> (mean, std) over seeds.

    Fields: valid, test, parameters, fit_seconds, latency_ms, peak_mb, relative (robustness), and effective
    (robustness against the same seed's ``reference`` run) when that run is among the results.
    """
    fields = ("valid", "test", "parameters", "fit_seconds", "latency_ms", "peak_mb", "relative")
    references = {r["seed"]: r["curves"] for r in results if r["name"] == reference}
    summary: dict[str, dict[str, tuple[float, float]]] = {}
    for name in dict.fromkeys(r["name"] for r in results):
        runs = [{**r, "relative": np.mean([relative_robustness(s) for cs in r["curves"].values() for s in cs.values()])}
                for r in results if r["name"] == name]
        if len(references) == len({r["seed"] for r in results}):
            for r in runs:
                r["effective"] = mean_effective_robustness(r["curves"], references[r["seed"]])
        summary[name] = {f: (float(np.mean([r[f] for r in runs])), float(np.std([r[f] for r in runs])))
                         for f in (*fields, "effective") if f in runs[0]}
    return summary
