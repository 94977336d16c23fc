"""``mmfuse fit`` and ``mmfuse sweep``: train a model (or a retrieval model) on a table; compare fusion methods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from . import render
from .console import console, progress_bars, setup_logging
from .options import (SEEDS, FiniteFloat, ListedOption, cache_option, check_seeds, encoding_option, list_encoders,
                      list_fusions, list_members, list_metrics, list_modalities, list_presets, names, pairs,
                      RegistryChoice, runtime_options, source, task_names, threads_option)

RUN_OPTIONS = ("train", "valid", "out", "encoding", "overwrite", "resume", "restart", "checkpoint_every", "quiet",
               "sample_weight")


@click.command()
@click.argument("train", type=click.Path(dir_okay=False))
@click.option("--label", help="Label column to predict (not for --task retrieval).")
@click.option("--valid", type=click.Path(dir_okay=False), help="Validation table; default: a stratified hold-out of TRAIN.")
@click.option("--out", default="model", show_default=True, type=click.Path(file_okay=False), help="Folder to save the model in.")
@click.option("--task", type=RegistryChoice(task_names), default="auto", show_default=True,
              help="Override the inferred task; retrieval trains two towers on (--query, --target) pairs.")
@click.option("--query", help="Retrieval: the query column (e.g. a caption).")
@click.option("--target", help="Retrieval: the target column (e.g. an image).")
@click.option("--finetune", is_flag=True, help="Train pretrained encoders' backbones too (default: frozen, features cached).")
@cache_option
@click.option("--label-sep", help="Separator of a multilabel column of delimited strings (e.g. '|').")
@click.option("--threshold", type=FiniteFloat(0, 1), default=0.5, show_default=True, help="Multilabel decision threshold.")
@click.option("--eval-metric", cls=ListedOption, listing=list_metrics,
              help="What every choice on validation optimises (members' settings, ensemble, early stopping) "
                   "[default: the task's first].")
@click.option("--sample-weight", metavar="COLUMN", help="Column of each row's weight (a number at or above 0) in "
              "every member's loss and the choices made on validation; not read as a feature.")
@click.option("--class-weight", type=click.Choice(["balanced"]),
              help="balanced: each class weighs as much in all as any other (n / (classes x its rows)).")
@click.option("--preset", cls=ListedOption, listing=list_presets,
              help="Built-in preset [default: default; retrieval for --task retrieval].")
@click.option("--config", type=click.Path(dir_okay=False), help="YAML file merged over the preset.")
@click.option("--encoder", "encoders", multiple=True, metavar="COL=NAME", cls=ListedOption, listing=list_encoders,
              help="Encoder for a column, or for every input of a kind (COL = text, image, audio, sequence, tabular); "
                   "text_hf:/path/to/local/model for a local Hugging Face text model.")
@click.option("--fusion", cls=ListedOption, listing=list_fusions, help="Fusion method.")
@click.option("--modality-dropout", type=FiniteFloat(0, 1, max_open=True), help="Hide each input of a row with this probability while training.")
@click.option("--column-type", "column_types", multiple=True, metavar="COL=MODALITY", cls=ListedOption,
              listing=list_modalities, help="Override detection.")
@click.option("--ignore", multiple=True, metavar="COL", help="Column not to use (IDs that would leak); repeatable.")
@click.option("--set-sep", "set_sep", multiple=True, metavar="COL=SEP",
              help="COL holds several values of one modality per cell, split by SEP (e.g. photos='|'); JSON lists of "
                   "strings, folders and globs are found without it. Repeatable.")
@click.option("--set-pooling", type=click.Choice(["mean", "attention"]),
              help="How the network pools a set's elements [default: the preset's, mean].")
@click.option("--seed", type=SEEDS, help="Random seed (splits, init, shuffling).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Rows per training step.")
@click.option("--lr", type=FiniteFloat(min=0, min_open=True), help="Learning rate.")
@click.option("--max-epochs", type=click.IntRange(min=1), help="Most epochs to train.")
@click.option("--time-limit", type=FiniteFloat(min=0, min_open=True),
              help="Seconds the whole fit may take: members run cheapest first, those that no longer fit are skipped "
                   "(the log and the leaderboard say so), the network trains for what is left; with none, a "
                   "portfolio's fit gets max(120 s, 3x the time before the network).")
@click.option("--members", metavar="A,B", cls=ListedOption, listing=list_members,
              help="Portfolio members to train (default: the preset's); network is the fused network.")
@click.option("--exclude-members", metavar="A,B", cls=ListedOption, listing=list_members,
              help="Train the preset's members except these.")
@click.option("--refit/--no-refit", default=None,
              help="After the ensemble is chosen on validation, refit its members on the training and validation rows "
                   "together [default: when the validation rows are held out of TRAIN, not with --valid].")
@threads_option
@click.option("--devices", type=click.IntRange(min=1), help="Processes (CPU) or GPUs per node; more than 1 trains with DDP.")
@click.option("--strategy", type=click.Choice(["auto", "ddp"]), help="Distributed strategy (ddp when --devices > 1).")
@click.option("--num-nodes", type=click.IntRange(min=1), help="Machines (with torchrun or SLURM setting the ranks).")
@click.option("--stream", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help="Keep large inputs (images, audio, sequences) on disk instead of in memory; auto: those over 1 GB.")
@click.option("--sample-cache/--no-sample-cache", default=True, show_default=True,
              help="Streamed inputs: keep preprocessed rows in CACHE_DIR/samples (else decode them every epoch).")
@runtime_options
@click.option("--on-bad-row", type=click.Choice(["error", "skip", "mask"]), default="mask", show_default=True,
              help="A row with an unreadable file or value: stop, skip the row, or mask that value.")
@encoding_option
@click.option("--overwrite", is_flag=True, help="Replace the model already in --out.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted fit from its last complete epoch (saved in OUT.partial/ beside --out).")
@click.option("--restart", is_flag=True, help="Discard an interrupted fit saved in OUT.partial/ and start over.")
@click.option("--checkpoint-every", type=FiniteFloat(min=0), default=30, show_default=True,
              help="Seconds of training between two saves of the run's state (0: after every epoch).")
@click.option("--quiet", is_flag=True, help="While it runs, warnings only (no progress, no stage lines); the result is still printed.")
def fit(**options: Any) -> None:
    """Train a model on TRAIN (CSV / Parquet / JSONL) and save it to --out.

    The run's state is saved in OUT.partial/ as it trains (see --checkpoint-every) until the model is saved: after a
    crash or a kill, the same command with --resume continues from the last saved epoch to the same model.
    """
    from ..estimators.runs import fit_and_save, make_estimator, out_problem

    run = {name: options.pop(name) for name in RUN_OPTIONS}
    setup_logging(run["quiet"])
    problem = out_problem(run["out"], run["overwrite"])
    if problem:
        raise click.UsageError(problem)
    settings = {**options, "encoders": pairs(options["encoders"], "--encoder"), "ignore": list(options["ignore"]),
                "members": names(options["members"]), "exclude_members": names(options["exclude_members"]),
                "column_types": pairs(options["column_types"], "--column-type"),
                "set_sep": pairs(options["set_sep"], "--set-sep"), "verbose": not run["quiet"]}
    with progress_bars(not run["quiet"]) as progress:
        estimator = make_estimator(settings.pop("task"), {**settings, "progress": progress or None})
        path = fit_and_save(estimator, source(run["train"], run["encoding"]), source(run["valid"], run["encoding"]),
                            run["out"], run["resume"], run["restart"], run["checkpoint_every"],
                            {} if run["sample_weight"] is None else {"sample_weight": run["sample_weight"]})
    if path is not None:  # DDP: the process of rank 0 saves and reports
        report_fit(estimator, path)


def report_fit(estimator: Any, path: Path) -> None:
    """The validation table of the saved model (a portfolio: its ensemble), the network's own course, where the
    time went, and where it was saved."""
    from ..estimators.timing import describe_stages

    m = estimator.metrics_
    weights = m.get("ensemble", {}).get("weights")  # a portfolio's members and weights
    if estimator.is_retrieval:
        console.print(render.retrieval_table(f"validation ({m['fit_seconds']:.1f} s)", m["valid"], estimator.query,
                                             estimator.target))
    else:
        what = "the ensemble you get" if weights is not None else "the network"
        console.print(render.metrics_table(f"validation: {what} ({m['fit_seconds']:.1f} s)", m["valid"]))
        if weights is not None:
            console.print(render.leaderboard_table("leaderboard (validation)", estimator.leaderboard()))
    if m["restored_epoch"]:
        weight = f"; its weight in the ensemble: {weights.get('network', 0.0):.2f}" if weights is not None else ""
        console.print(f"the network: epoch {m['restored_epoch']} of {m['epochs']} kept (its best on validation); "
                      f"stopped by {m['stopped']}{weight}")
    console.print(f"time: {describe_stages(m['stages'], m['epochs'])}")
    console.print(f"saved model to {path}/")


@click.command()
@click.argument("train", type=click.Path(dir_okay=False))
@click.option("--label", required=True, help="Label column to predict.")
@click.option("--test", required=True, type=click.Path(dir_okay=False), help="Test table (scores reported on it).")
@click.option("--valid", type=click.Path(dir_okay=False), help="Validation table (picks the winner); default: hold-out.")
@click.option("--fusions", default="concat,late,gated,tensor,lowrank,film,attention", show_default=True,
              cls=ListedOption, listing=list_fusions, help="Comma-separated fusion methods to compare.")
@click.option("--seeds", default="0,1,2", show_default=True, callback=check_seeds,
              help="Comma-separated seeds; mean and spread are reported.")
@click.option("--preset", default="default", show_default=True, cls=ListedOption, listing=list_presets,
              help="Preset every run starts from.")
@click.option("--max-epochs", type=click.IntRange(min=1), help="Most epochs per run (the same budget for all).")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="CPU threads for torch in each run.")
@click.option("--ignore", multiple=True, metavar="COL", help="Column not to use; repeatable.")
@click.option("--members", metavar="A,B", cls=ListedOption, listing=list_members,
              help="Comma-separated cheap members, each run alone and all in the portfolio with the network ('' for "
              "none) [default: every cheap member].")
@click.option("--out", default="sweep", show_default=True, type=click.Path(file_okay=False),
              help="Folder for every run's model and the winner (OUT/best).")
def sweep(train: str, label: str, test: str, valid: str | None, fusions: str, seeds: str, preset: str,
          max_epochs: int | None, threads: int, ignore: tuple[str, ...], members: str | None, out: str) -> None:
    """Train each unimodal baseline, each fusion method, each cheap member and the portfolio of them all on TRAIN
    with the same budget and compare them."""
    from ..analysis.sweep import plan_sweep, run_sweep, summarise

    setup_logging()
    from .. import estimators  # noqa: F401  (registers the members)
    from ..errors import ConfigError
    from ..registry import MEMBERS

    unknown = [m for m in names(members) or [] if m not in MEMBERS]
    if unknown:
        raise ConfigError(f"--members: unknown member {unknown[0]!r}; {list_members()}")
    # each member that reads the flat views runs alone (the network's own runs are the fusions')
    cheap = [m for m in names(members) or MEMBERS.names() if MEMBERS.get(m).reads_views] if members != "" else []
    specs = plan_sweep(train, label, [f.strip() for f in fusions.split(",") if f.strip()], list(ignore), cheap)
    base = {"preset": preset, "threads": threads, "max_epochs": max_epochs, "ignore": list(ignore)}
    base = {k: v for k, v in base.items() if v is not None}
    seed_list = [int(s) for s in seeds.split(",")]  # checked by the option
    console.print(f"{len(specs)} configurations x {len(seed_list)} seed{'s' if len(seed_list) > 1 else ''}, "
                  "each in its own process")

    def progress(r: dict) -> None:
        if "skipped" in r:
            console.print(f"  {r['name']} seed {r['seed']}: skipped ({r['skipped']})")
            return
        console.print(f"  {r['name']} seed {r['seed']}: valid {r['metric']} {r['valid']:.4f}, test {r['test']:.4f}, "
                      f"{r['fit_seconds']:.1f} s")

    results, winner = run_sweep(label, train, test, valid, specs, seed_list, base, out, progress)
    summary = summarise(results)
    console.print(render.sweep_table(summary, results[0]["metric"], seeds, winner))
    console.print("robustness on the test split: relative = mean area under the corruption curves; effective = "
                  "mean excess over late fusion's curves moved to the same clean score (MultiBench)"
                  if "effective" in next(iter(summary.values())) else
                  "robustness on the test split: relative = mean area under the corruption curves")
    console.print(f"winner: {winner}; saved to {Path(out) / 'best'}/")
