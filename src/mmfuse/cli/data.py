"""``mmfuse datasets export`` and ``mmfuse demo``: the built-in real datasets, and the demo run on them."""

from __future__ import annotations

from pathlib import Path

import click

from . import render
from .console import console, progress_bars, setup_logging
from .options import SEEDS


@click.group()
def datasets() -> None:
    """Built-in real datasets, written as tables mmfuse reads."""


@datasets.command("export")
@click.argument("name", type=click.Choice(["avdigits", "emoji"]))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--variant", type=click.Choice(["hard", "clean"]), default="hard", show_default=True,
              help="avdigits: degraded so neither modality suffices alone (hard), or as recorded (clean).")
@click.option("--seed", type=SEEDS, default=0, show_default=True, help="avdigits: pairing and split seed.")
@click.option("--source", type=click.Path(file_okay=False), help="emoji: unpacked npm package folder (default: data/npm/...).")
def export_dataset(name: str, out_dir: str, variant: str, seed: int, source: str | None) -> None:
    """Write dataset NAME to OUT_DIR as train/valid/test CSVs plus the files they point to.

    avdigits: MNIST images paired by digit with spoken-digit MFCC sequences (columns image, audio, digit).
    emoji: Google emoji images with their names (columns image, name, category).
    """
    import pandas as pd

    from ..datasets import avdigits, emoji

    paths = avdigits.export(out_dir, variant, seed) if name == "avdigits" else emoji.export(out_dir, source)
    for split, path in paths.items():
        frame = pd.read_csv(path)
        console.print(f"{split}: {path} ({len(frame):,} rows; columns {', '.join(frame.columns)})")


@click.command()
@click.option("--dataset", type=click.Choice(["avdigits", "emoji"]), default="avdigits", show_default=True,
              help="avdigits: image-only vs audio-only vs fused on avdigits-hard; emoji: seed vs default preset.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False),
              help="Where the table is (built there first if missing); default data/avdigits-hard or data/emoji.")
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False),
              help="Where models and report.md go.")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="CPU threads for torch.")
def demo(dataset: str, data_dir: str | None, out: str, threads: int) -> None:
    """Train on a real built-in dataset, print a comparison table on its test split and write a report."""
    from ..demo import run_demo

    setup_logging()
    default_dir = {"avdigits": "data/avdigits-hard", "emoji": "data/emoji"}[dataset]
    with progress_bars() as progress:
        result = run_demo(dataset, Path(data_dir or default_dir), Path(out), threads, progress)
    console.print(render.demo_table(result.title, result.runs))
    if result.contributions:
        shares = ", ".join(f"{n} {v:+.3f}" for n, v in (result.contributions.shapley or {}).items())
        console.print(f"fused model, Shapley contribution to test {result.contributions.metric}: {shares}")
    console.print(f"best model: {result.runs[result.best]['path']}/   report: {result.report}", soft_wrap=True)
