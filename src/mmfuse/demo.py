"""``mmfuse demo``: train on a real built-in dataset, print one comparison table, write a Markdown report.

avdigits (the default): MNIST images + spoken-digit MFCCs, hard variant; image-only, audio-only and fused models.
emoji: image + name -> category; the seed preset against the default preset.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .datasets import avdigits, emoji
from .predictor import Predictor
from .report import plot_bars, plot_robustness
from .robustness import LEVELS, RobustnessReport, robustness

DEMOS: dict[str, dict[str, Any]] = {
    "avdigits": {"label": "digit", "title": "avdigits-hard: MNIST image + spoken digit (MFCC) -> digit, test split",
                 "runs": {"image only": {"ignore": ["audio"]}, "audio only": {"ignore": ["image"]}, "fused": {}}},
    "emoji": {"label": "category", "title": "emoji: image + name -> category (10 classes), test split",
              "runs": {"seed": {"preset": "seed"}, "default": {"preset": "default"}}},
}


def prepare_data(dataset: str, data_dir: Path, console: Console) -> None:
    if (data_dir / "train.csv").is_file():
        return
    console.print(f"building {dataset} in {data_dir}/")
    if dataset == "avdigits":
        avdigits.export(data_dir, "hard")
    else:
        emoji.export(data_dir)


def run_demo(dataset: str, data_dir: Path, out: Path, threads: int, console: Console) -> dict[str, dict]:
    """Fit each run on train (validated on valid), score on test, save under ``out/<run>``, write ``report.md``."""
    demo = DEMOS[dataset]
    prepare_data(dataset, data_dir, console)
    results, predictor_of = {}, {}
    for name, options in demo["runs"].items():
        console.rule(name)
        start = time.perf_counter()
        predictor = Predictor(demo["label"], threads=threads, **options)
        predictor.fit(data_dir / "train.csv", valid=data_dir / "valid.csv")
        fit_seconds = time.perf_counter() - start
        path = out / name.replace(" ", "_")
        path.mkdir(parents=True, exist_ok=True)
        test = predictor.evaluate(data_dir / "test.csv", confusion_plot=path / "confusion_test.png")
        predictor.metrics_["test"] = test
        predictor.save(path)
        predictor_of[name] = predictor
        results[name] = {**test, "epochs": predictor.metrics_["epochs"], "fit_seconds": fit_seconds,
                         "parameters": predictor.metrics_["parameters"], "path": path}
    table = Table(title=demo["title"], title_justify="left")
    for header in ("model", "accuracy", "macro-F1", "epochs", "train time", "parameters"):
        table.add_column(header, justify="left" if header == "model" else "right")
    for name, r in results.items():
        table.add_row(name, f"{r['accuracy']:.3f}", f"{r['macro_f1']:.3f}", str(r["epochs"]),
                      f"{r['fit_seconds']:.1f} s", f"{r['parameters']:,}")
    console.print(table)
    fused = "fused" if "fused" in results else None
    contributions = robustness(predictor_of[fused], data_dir / "test.csv") if fused else None
    if contributions:
        plot_robustness(contributions.curves, LEVELS, contributions.metric, out / "robustness.png")
        shares = ", ".join(f"{n} {v:+.3f}" for n, v in (contributions.shapley or {}).items())
        console.print(f"fused model, Shapley contribution to test {contributions.metric}: {shares}")
    report = write_report(out, demo["title"], results, contributions)
    best = max(results, key=lambda n: results[n]["accuracy"])
    console.print(f"best model: {results[best]['path']}/   report: {report}", soft_wrap=True)
    return results


def write_report(out: Path, title: str, results: dict[str, dict], contributions: RobustnessReport | None = None) -> Path:
    """Markdown with the table, a bar chart of the runs, the fused model's input contributions and corruption
    curves (when given), and each run's learning curves and confusion matrix."""
    plot_bars({n: r["accuracy"] for n, r in results.items()}, out / "accuracy.png", "test accuracy")
    lines = [f"# {title}", "", "| model | accuracy | macro-F1 | epochs | train time | parameters |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {n} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {r['epochs']} | {r['fit_seconds']:.1f} s | "
              f"{r['parameters']:,} |" for n, r in results.items()]
    lines += ["", "![test accuracy](accuracy.png)", ""]
    if contributions:
        lines += ["## What each input contributes (fused model)", "",
                  f"| input | {contributions.metric} without it | Shapley value |", "|---|---|---|"]
        lines += [f"| {n} | {s:.3f} | {(contributions.shapley or {}).get(n, float('nan')):+.3f} |"
                  for n, s in contributions.without.items()]
        lines += ["", f"All inputs: {contributions.score:.3f}; none: {contributions.nothing:.3f}.", "",
                  "![robustness](robustness.png)", ""]
    for name, r in results.items():
        folder = r["path"].name
        lines += [f"## {name}", "", f"Model: `{r['path']}/`", "",
                  f"![learning curves]({folder}/learning_curves.png)", "",
                  f"![confusion matrix]({folder}/confusion_test.png)", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
