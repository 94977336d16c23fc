"""``mmfuse demo``: train presets on the real emoji table and print one comparison table on the test split."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .datasets import emoji
from .predictor import Predictor


def run_demo(data_dir: Path, out: Path, threads: int, presets: list[str], console: Console) -> dict[str, dict]:
    """Fit each preset on train (validated on valid), score on test, save under ``out/<preset>``."""
    if not (data_dir / "train.csv").is_file():
        console.print(f"exporting the emoji table to {data_dir}/")
        emoji.export(data_dir)
    results = {}
    for preset in presets:
        console.rule(f"preset {preset}")
        start = time.perf_counter()
        predictor = Predictor("category", preset=preset, threads=threads).fit(data_dir / "train.csv",
                                                                             valid=data_dir / "valid.csv")
        fit_seconds = time.perf_counter() - start
        path = out / preset
        path.mkdir(parents=True, exist_ok=True)
        test = predictor.evaluate(data_dir / "test.csv", confusion_plot=path / "confusion_test.png")
        predictor.metrics_["test"] = test
        predictor.save(path)
        results[preset] = {**test, "epochs": predictor.metrics_["epochs"], "fit_seconds": fit_seconds,
                           "parameters": predictor.metrics_["parameters"], "path": str(path)}
    table = Table(title="emoji: image + name -> category (10 classes), test split", title_justify="left")
    for header in ("preset", "accuracy", "macro-F1", "epochs", "train time", "parameters"):
        table.add_column(header, justify="left" if header == "preset" else "right")
    for preset, r in results.items():
        table.add_row(preset, f"{r['accuracy']:.3f}", f"{r['macro_f1']:.3f}", str(r["epochs"]),
                      f"{r['fit_seconds']:.1f} s", f"{r['parameters']:,}")
    console.print(table)
    for preset, r in results.items():
        console.print(f"saved {preset}: {r['path']}/  (learning_curves.png, confusion_test.png inside)", soft_wrap=True)
    return results
