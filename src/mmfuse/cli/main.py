"""The ``mmfuse`` commands: a thin layer over the estimators, the analysis and the datasets. Commands import the
library inside their body, so ``mmfuse --help`` starts without loading torch.

    mmfuse fit train.csv --label y --valid valid.csv --out model/
    mmfuse fit pairs.csv --task retrieval --query caption --target image --out model/
    mmfuse evaluate model/ test.csv [--json]
    mmfuse index model/ items.csv --out index/;  mmfuse search index/ "a red heart"
    mmfuse predict model/ new.csv --out preds.csv
    mmfuse info model/
    mmfuse serve model/ [--port 8000]            # REST API + web page
    mmfuse datasets export emoji DIR
    mmfuse demo
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from ..errors import DataError, MMFuseError
from . import render
from .console import console, errors, progress_bars, setup_logging

TASK_CHOICES = ["auto", "binary", "multiclass", "multilabel", "regression", "retrieval"]


class ListedOption(click.Option):
    """An option whose help ends with names read from the registries when the help is shown (``mmfuse --help``
    itself starts without importing torch): ``listing()`` returns that text."""

    def __init__(self, *args: Any, listing: Callable[[], str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.listing, self.base_help = listing, self.help or ""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = f"{self.base_help} {self.listing()}"
        return super().get_help_record(ctx)


def _presets() -> str:
    from ..config import list_presets

    return f"Presets: {', '.join(list_presets())}."


def _fusions() -> str:
    from .. import modalities  # noqa: F401  (registers every built-in plugin)
    from ..nn import fusion  # noqa: F401
    from ..registry import list_fusions

    return f"Methods: {', '.join(list_fusions())}."


def _encoders() -> str:
    from .. import modalities  # noqa: F401
    from ..registry import MODALITIES, list_encoders

    kinds = sorted({MODALITIES.get(m).input for m in MODALITIES.names()})
    return "Encoders: " + "; ".join(f"{kind}: {', '.join(list_encoders(kind))}" for kind in kinds) + "."


def _modalities() -> str:
    from .. import modalities  # noqa: F401
    from ..registry import MODALITIES

    return f"MODALITY: {', '.join([*MODALITIES.names(), 'ignore'])}."


encoding_option = click.option("--encoding", help="Text encoding of CSV / TSV / JSONL tables, e.g. latin-1 "
                                                   "[default: UTF-8, with or without a BOM].")


def runtime_options(command):
    """--device and --workers, for fit and for the commands that run a saved model (unset: the estimator's
    defaults, 0 workers and auto)."""
    command = click.option("--workers", type=click.IntRange(min=0),
                           help="DataLoader worker processes that decode and prepare batches (0: the main "
                                "process) [default: 0].")(command)
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]),
                        help="Where features are extracted and the model trains and predicts [default: auto, a "
                             "CUDA GPU if present].")(command)


def _source(path: str | None, encoding: str | None):
    """A table argument as the estimators read it: the path, or the path with its encoding."""
    from ..data.table import TableFile

    return TableFile(path, encoding) if path and encoding else path


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise click.BadParameter(f"expected COLUMN=VALUE, got {item!r}", param_hint=option)
        pairs[key] = value
    return pairs


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="mmfuse")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
              help="Import a plugin module (its modalities, encoders, processors) before the command; repeatable. "
                   "Also imported: the modules in MMFUSE_PLUGINS (comma-separated) and the mmfuse.plugins entry "
                   "points of installed packages.")
def main(plugins: tuple[str, ...]) -> None:
    """mmfuse: train one fused model on a table of text, images, numbers and categories."""
    from ..plugins import load_plugins

    setup_logging()
    load_plugins(plugins)


@main.command()
@click.argument("train", type=click.Path(dir_okay=False))
@click.option("--label", help="Label column to predict (not for --task retrieval).")
@click.option("--valid", type=click.Path(dir_okay=False), help="Validation table; default: a stratified hold-out of TRAIN.")
@click.option("--out", default="model", show_default=True, type=click.Path(file_okay=False), help="Folder to save the model in.")
@click.option("--task", type=click.Choice(TASK_CHOICES), default="auto", show_default=True,
              help="Override the inferred task; retrieval trains two towers on (--query, --target) pairs.")
@click.option("--query", help="Retrieval: the query column (e.g. a caption).")
@click.option("--target", help="Retrieval: the target column (e.g. an image).")
@click.option("--finetune", is_flag=True, help="Train pretrained encoders' backbones too (default: frozen, features cached).")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Feature cache of frozen pretrained encoders [default: ~/.cache/mmfuse/features].")
@click.option("--label-sep", help="Separator of a multilabel column of delimited strings (e.g. '|').")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Multilabel decision threshold.")
@click.option("--preset", cls=ListedOption, listing=_presets,
              help="Built-in preset [default: default; retrieval for --task retrieval].")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file merged over the preset.")
@click.option("--encoder", multiple=True, metavar="COL=NAME", cls=ListedOption, listing=_encoders,
              help="Encoder for a column, or for every input of a kind (COL = text, image, audio, sequence, tabular); "
                   "text_hf:/path/to/local/model for a local Hugging Face text model.")
@click.option("--fusion", cls=ListedOption, listing=_fusions, help="Fusion method.")
@click.option("--modality-dropout", type=click.FloatRange(0, 1, max_open=True), help="Hide each input of a row with this probability while training.")
@click.option("--column-type", multiple=True, metavar="COL=MODALITY", cls=ListedOption, listing=_modalities,
              help="Override detection.")
@click.option("--ignore", multiple=True, metavar="COL", help="Column not to use (IDs that would leak); repeatable.")
@click.option("--seed", type=int, help="Random seed (splits, init, shuffling).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Rows per training step.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Learning rate.")
@click.option("--max-epochs", type=click.IntRange(min=1), help="Most epochs to train.")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), help="Stop training after this many seconds.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch.")
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
@click.option("--checkpoint-every", type=click.FloatRange(min=0), default=30, show_default=True,
              help="Seconds of training between two saves of the run's state (0: after every epoch).")
@click.option("--quiet", is_flag=True, help="No progress bars or tables.")
def fit(train: str, label: str | None, valid: str | None, out: str, task: str, query: str | None, target: str | None,
        finetune: bool, cache_dir: str | None, label_sep: str | None, threshold: float,
        preset: str | None, config_file: str | None, encoder: tuple[str, ...], fusion: str | None,
        modality_dropout: float | None, column_type: tuple[str, ...],
        ignore: tuple[str, ...], seed: int | None, batch_size: int | None, lr: float | None, max_epochs: int | None,
        time_limit: float | None, threads: int | None, devices: int | None, strategy: str | None,
        num_nodes: int | None, stream: str, sample_cache: bool, workers: int | None, device: str | None,
        on_bad_row: str, encoding: str | None, overwrite: bool, resume: bool, restart: bool, checkpoint_every: float,
        quiet: bool) -> None:
    """Train a model on TRAIN (CSV / Parquet / JSONL) and save it to --out.

    The run's state is saved in OUT.partial/ as it trains (see --checkpoint-every) until the model is saved: after a
    crash or a kill, the same command with --resume continues from the last saved epoch to the same model.
    """
    from ..estimators import Predictor, Retriever
    from ..estimators.timing import describe_stages
    from ..io.checkpoint import remove_checkpoints

    setup_logging(quiet)
    _check_out(out, overwrite)
    common = dict(config=config_file, column_types=_pairs(column_type, "--column-type"),
                  encoders=_pairs(encoder, "--encoder"), finetune=finetune, cache_dir=cache_dir, on_bad_row=on_bad_row,
                  seed=seed, batch_size=batch_size, lr=lr, max_epochs=max_epochs, time_limit=time_limit,
                  threads=threads, verbose=not quiet, devices=devices, strategy=strategy, num_nodes=num_nodes,
                  stream=stream, sample_cache=sample_cache)
    if task == "retrieval":
        if not query or not target or label:
            raise click.UsageError("--task retrieval needs --query and --target (the two columns of each pair), "
                                   "and no --label")
    elif not label or query or target:
        raise click.UsageError("--label is required (--query/--target are for --task retrieval)")
    with progress_bars(not quiet) as progress:
        if task == "retrieval":
            estimator = Retriever(query=query, target=target, preset=preset or "retrieval", progress=progress, **common)
        else:
            estimator = Predictor(label=label, task=task, preset=preset or "default", fusion=fusion,
                                  modality_dropout=modality_dropout, ignore=list(ignore), label_sep=label_sep,
                                  threshold=threshold, progress=progress, **common)
        estimator.set_runtime(device, workers)
        partial = Path(out).parent / f"{Path(out).name}.partial"
        estimator.fit(_source(train, encoding), valid=_source(valid, encoding), checkpoint_dir=partial, resume=resume,
                      restart=restart, checkpoint_every=checkpoint_every)
    if estimator.global_rank_ != 0:
        return  # DDP: the process of rank 0 saves and reports
    path = estimator.save(out)
    remove_checkpoints(partial)
    m = estimator.metrics_
    title = f"validation (epoch {m['restored_epoch']} of {m['epochs']}, {m['fit_seconds']:.1f} s)"
    if task == "retrieval":
        console.print(render.retrieval_table(title, m["valid"], estimator.query, estimator.target))
    else:
        console.print(render.metrics_table(title, m["valid"]))
    console.print(f"time: {describe_stages(m['stages'], m['epochs'])}")
    console.print(f"saved model to {path}/")


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print metrics as JSON.")
@click.option("--confusion", type=click.Path(dir_okay=False), help="Also write a confusion-matrix PNG here.")
@click.option("--robustness", is_flag=True,
              help="Also: the score with each input removed, Shapley contributions, and corruption curves.")
@click.option("--robustness-plot", type=click.Path(dir_okay=False), help="With --robustness: draw the curves here (PNG).")
@click.option("--zero-shot", "zero_shot", metavar="LABEL",
              help="Retrieval models: also classify by nearest class-name prompt, scored against column LABEL.")
@click.option("--prompt", default="{}", show_default=True, help="With --zero-shot: prompt text, {} = the class name.")
@click.option("--on-bad-row", type=click.Choice(["error", "skip", "mask"]), help="Override the model's policy.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Feature cache of frozen pretrained encoders.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch.")
@runtime_options
@encoding_option
def evaluate(model: str, data: str, as_json: bool, confusion: str | None, robustness: bool,
             robustness_plot: str | None, zero_shot: str | None, prompt: str, on_bad_row: str | None,
             cache_dir: str | None, threads: int | None, device: str | None, workers: int | None,
             encoding: str | None) -> None:
    """Score MODEL on a labelled table DATA (retrieval models: on a table of pairs)."""
    setup_logging(as_json)
    data = _source(data, encoding)
    # --json: warnings still go to stderr
    estimator = _load(model, on_bad_row, threads, cache_dir=cache_dir).set_runtime(device, workers)
    if estimator.is_retrieval:
        _evaluate_retrieval(estimator, data, as_json, zero_shot, prompt, confusion or robustness)
        return
    if zero_shot:
        raise DataError("--zero-shot needs a retrieval model (mmfuse fit --task retrieval)")
    metrics = estimator.evaluate(data, confusion_plot=confusion)
    report = None
    if robustness or robustness_plot:
        from ..analysis.robustness import robustness as analyse
        from ..plots import plot_robustness

        report = analyse(estimator, data)
        if robustness_plot:
            plot_robustness(report.curves, report.levels, report.metric, robustness_plot)
    written = [f"wrote {what} to {path}" for what, path in (("the confusion matrix", confusion),
                                                              ("the robustness curves", robustness_plot)) if path]
    if as_json:
        click.echo(json.dumps({**metrics, **({"robustness": report.to_dict()} if report else {})}, indent=2))
        for line in written:
            errors.print(line, highlight=False, soft_wrap=True)
        return
    console.print(render.metrics_table(Path(getattr(data, "path", data)).name, metrics))
    for table in render.robustness_tables(report) if report else []:
        console.print(table)
    for line in written:
        console.print(line, highlight=False, soft_wrap=True)


def _evaluate_retrieval(retriever, data: str, as_json: bool, zero_shot: str | None, prompt: str,
                        classifier_options: bool) -> None:
    if classifier_options:
        raise DataError("--confusion and --robustness are for classification models, not retrieval")
    metrics = retriever.evaluate(data)
    shot = retriever.zero_shot(data, zero_shot, prompt) if zero_shot else None
    if as_json:
        click.echo(json.dumps({**metrics, **({"zero_shot": shot} if shot else {})}, indent=2))
        return
    console.print(render.retrieval_table(f"{Path(getattr(data, 'path', data)).name}: retrieval among {metrics['pairs']} pairs", metrics,
                                         retriever.query, retriever.target))
    if shot:
        console.print(f"zero-shot classification of {zero_shot!r} ({shot['classes']} classes, prompt {prompt!r}, "
                      f"{shot['rows']} rows): accuracy {shot['accuracy']:.3f}")


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--out", default="predictions.csv", show_default=True, type=click.Path(dir_okay=False), help="CSV to write.")
@click.option("--threshold", type=click.FloatRange(0, 1), help="Multilabel decision threshold (default: the model's).")
@click.option("--on-bad-row", type=click.Choice(["error", "skip", "mask"]), help="Override the model's policy.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch.")
@runtime_options
@encoding_option
def predict(model: str, data: str, out: str, threshold: float | None, on_bad_row: str | None, threads: int | None,
            device: str | None, workers: int | None, encoding: str | None) -> None:
    """Write predictions for DATA: row, prediction and one proba_<class> column per class."""
    setup_logging()
    data = _source(data, encoding)
    predictor = _load(model, on_bad_row, threads).set_runtime(device, workers)
    if predictor.is_retrieval:
        raise DataError(f"{model} is a retrieval model: use mmfuse index and mmfuse search")
    if threshold is not None:
        predictor.task_.threshold = threshold
    frame = predictor.predict_frame(data)
    frame.to_csv(out, index=False)
    console.print(f"wrote {len(frame)} predictions to {out}")


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
def info(model: str) -> None:
    """Show a saved model's columns, encoders, task and metrics."""
    setup_logging()
    about = _load(model, None, None, verbose=False).describe()
    what = f"query {about['query']!r} <-> target {about['target']!r}" if about["task"] == "retrieval" else \
        f"label {about['label']!r}"
    classes = f", {len(about['classes'])} classes" if about.get("classes") else ""
    console.print(f"[bold]{model}[/bold]  mmfuse {about['mmfuse']}, {what}, task {about['task']}{classes}")
    if about["plugins"]:
        console.print(f"plugins: {', '.join(about['plugins'])}")
    console.print(render.inputs_table(about))
    if about["task"] == "retrieval":
        console.print(f"shared embedding: {about['embed_dim']}-d, cosine similarity")
    else:
        console.print(f"fusion: {about['fusion']}; head: {about['head'] or 'linear'}")
    metrics = about["metrics"]
    if not metrics:
        console.print("no training figures: metrics.json is not in this folder (optional; the model works without it)")
    elif "epochs" in metrics:
        console.print(f"trained {metrics['epochs']} epochs in {metrics.get('fit_seconds')} s, "
                      f"{metrics.get('parameters', 0):,} parameters")
    for split, values in metrics.items():
        if isinstance(values, dict) and all(isinstance(v, (int, float)) for v in values.values()):
            console.print(render.metrics_table(split, values))


def _check_out(out: str, overwrite: bool) -> None:
    """Refuse, before any training, an --out that would replace a model without --overwrite or hold other files."""
    from ..io.bundle import is_bundle_folder

    folder = Path(out)
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return
    if not is_bundle_folder(folder):
        raise click.UsageError(f"--out {out} exists and is not an mmfuse model folder: choose another folder")
    if not overwrite:
        raise click.UsageError(f"--out {out} already holds a model: pass --overwrite to replace it")


def _load(model: str, on_bad_row: str | None, threads: int | None, verbose: bool = True, cache_dir: str | None = None):
    import torch

    from ..estimators import load

    if threads:
        torch.set_num_threads(threads)
    predictor = load(model, verbose=verbose, cache_dir=cache_dir)
    if on_bad_row:
        predictor.on_bad_row = on_bad_row
    return predictor


@main.command()
@click.argument("train", type=click.Path(dir_okay=False))
@click.option("--label", required=True, help="Label column to predict.")
@click.option("--test", required=True, type=click.Path(dir_okay=False), help="Test table (scores reported on it).")
@click.option("--valid", type=click.Path(dir_okay=False), help="Validation table (picks the winner); default: hold-out.")
@click.option("--fusions", default="concat,late,gated,tensor,lowrank,film,attention", show_default=True,
              cls=ListedOption, listing=_fusions, help="Comma-separated fusion methods to compare.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds; mean and spread are reported.")
@click.option("--preset", default="default", show_default=True, cls=ListedOption, listing=_presets,
              help="Preset every run starts from.")
@click.option("--max-epochs", type=click.IntRange(min=1), help="Most epochs per run (the same budget for all).")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="CPU threads for torch in each run.")
@click.option("--ignore", multiple=True, metavar="COL", help="Column not to use; repeatable.")
@click.option("--out", default="sweep", show_default=True, type=click.Path(file_okay=False),
              help="Folder for every run's model and the winner (OUT/best).")
def sweep(train: str, label: str, test: str, valid: str | None, fusions: str, seeds: str, preset: str,
          max_epochs: int | None, threads: int, ignore: tuple[str, ...], out: str) -> None:
    """Train each unimodal baseline and each fusion method on TRAIN with the same budget and compare them."""
    from ..analysis.sweep import plan_sweep, run_sweep, summarise

    setup_logging()
    specs = plan_sweep(train, label, [f.strip() for f in fusions.split(",") if f.strip()], list(ignore))
    base = {"preset": preset, "threads": threads, "max_epochs": max_epochs, "ignore": list(ignore)}
    base = {k: v for k, v in base.items() if v is not None}
    seed_list = [int(s) for s in seeds.split(",")]
    console.print(f"{len(specs)} configurations x {len(seed_list)} seeds, each in its own process")

    def progress(r: dict) -> None:
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


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.argument("items", type=click.Path(dir_okay=False))
@click.option("--column", help="The items' column [default: the model's target column, else its query column].")
@click.option("--tower", help="Model tower to embed them with [default: the tower of the same name].")
@click.option("--out", default="index", show_default=True, type=click.Path(file_okay=False), help="Index folder.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Feature cache of frozen pretrained encoders.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch.")
@encoding_option
def index(model: str, items: str, column: str | None, tower: str | None, out: str, cache_dir: str | None,
          threads: int | None, encoding: str | None) -> None:
    """Embed the collection ITEMS with retrieval MODEL into a search index."""
    from ..data.table import read_table
    from ..estimators.index import build_index

    setup_logging()
    retriever = _load_retriever(model, threads, cache_dir)
    table = read_table(_source(items, encoding), "items")
    column = column or next((c for c in (retriever.target, retriever.query) if c in table.frame.columns), None)
    if column is None:
        raise DataError(f"items: neither {retriever.target!r} nor {retriever.query!r} is a column; name one with --column")
    built = build_index(retriever, table, column, tower)
    built.save(out)
    console.print(f"indexed {len(built.rows)} items of {column!r} into {out}/")


@main.command()
@click.argument("index_dir", metavar="INDEX", type=click.Path(file_okay=False))
@click.argument("query", required=False)
@click.option("--image", type=click.Path(dir_okay=False), help="Search with an image file instead of text.")
@click.option("--audio", type=click.Path(dir_okay=False), help="Search with an audio file instead of text.")
@click.option("-k", "--top", default=5, show_default=True, type=click.IntRange(min=1), help="How many results.")
@click.option("--model", type=click.Path(file_okay=False), help="Retrieval model [default: the one that built INDEX].")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Feature cache of frozen pretrained encoders.")
def search(index_dir: str, query: str | None, image: str | None, audio: str | None, top: int, model: str | None,
           cache_dir: str | None) -> None:
    """Print the items of INDEX closest to QUERY (text), or to --image / --audio."""
    from ..estimators.index import SearchIndex

    given = [(m, v) for m, v in (("text", query), ("image", image), ("audio", audio)) if v]
    if len(given) != 1:
        raise click.UsageError("give exactly one query: a text argument, --image FILE or --audio FILE")
    setup_logging()
    modality, value = given[0]
    built = SearchIndex.load(index_dir)
    retriever = _load_retriever(model or built.model, None, cache_dir, verbose=False)
    vector = retriever.embed_values(retriever.tower_of_modality(modality), [value])[0]
    rows = [[str(rank), f"{score:.3f}", str(built.rows[i]), built.values[i], *[v[i] for v in built.extra.values()]]
            for rank, (i, score) in enumerate(built.search(vector, top), start=1)]
    console.print(render.search_table(f"top {top} of {len(built.rows)} {built.column!r} items for {value!r}",
                                      built.column, list(built.extra), rows))


def _load_retriever(model: str, threads: int | None, cache_dir: str | None, verbose: bool = True):
    retriever = _load(model, None, threads, verbose=verbose, cache_dir=cache_dir)
    if not retriever.is_retrieval:
        raise DataError(f"{model} is not a retrieval model (train one with mmfuse fit --task retrieval)")
    return retriever


@main.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True, help="Graph format.")
@click.option("--out", type=click.Path(dir_okay=False), help="File to write [default: MODEL/model.onnx].")
def export(model: str, fmt: str, out: str | None) -> None:
    """Export MODEL's network (encoders, fusion, head; fp32) for ONNX Runtime.

    Preprocessing stays the model's processors; frozen pretrained backbones enter as their cached features.
    Predict with it: Predictor.load(MODEL, backend="onnx", onnx_path=OUT).
    """
    from ..estimators import Predictor
    from ..estimators.onnx import OPSET, export_onnx

    setup_logging()
    predictor = _load(model, None, None, verbose=False)
    if not isinstance(predictor, Predictor):
        raise DataError(f"{model} is a retrieval model: export is for classification and regression models")
    path = export_onnx(predictor, out or Path(model) / "model.onnx")
    console.print(f"wrote {path} (ONNX opset {OPSET}, fp32, {path.stat().st_size / 1e6:.1f} MB)")


@main.command()
@click.argument("path", metavar="MODEL_OR_INDEX", type=click.Path(file_okay=False, exists=True))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--max-body-mb", default=20.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Largest request body (JSON, base64 or uploads), in MB.")
@click.option("--max-rows", default=256, show_default=True, type=click.IntRange(min=1), help="Most rows per /predict.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds a request may take.")
@click.option("--max-megapixels", default=25.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Largest uploaded image.")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True,
              help="Run the network with PyTorch, or with onnxruntime from MODEL/model.onnx (mmfuse export).")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Feature cache of frozen pretrained encoders.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch.")
def serve(path: str, host: str, port: int, max_body_mb: float, max_rows: int, timeout: float, max_megapixels: float,
          backend: str, cache_dir: str | None, threads: int | None) -> None:
    """Serve a saved model (POST /predict) or a search index (POST /search) over HTTP, with a web page at /.

    One model per process, loaded once; run several processes behind a proxy (or gunicorn with uvicorn workers
    on mmfuse.serve:create_app) to use more cores. The API is described at /docs.
    """
    try:
        import uvicorn

        from ..serve import ServeLimits, create_app
    except ImportError as err:
        raise click.UsageError(f"mmfuse serve needs the [serve] extra ({err.name} is missing): "
                               "pip install 'mmfuse[serve]'") from None
    import torch

    setup_logging()
    if threads:
        torch.set_num_threads(threads)
    limits = ServeLimits(int(max_body_mb * 1024 * 1024), max_rows, timeout, int(max_megapixels * 1e6))
    app = create_app(path, limits, cache_dir, backend)
    console.print(f"serving {path} on http://{host}:{port}/  (API: http://{host}:{port}/docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@main.group()
def datasets() -> None:
    """Built-in real datasets, written as tables mmfuse reads."""


@datasets.command("export")
@click.argument("name", type=click.Choice(["avdigits", "emoji"]))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--variant", type=click.Choice(["hard", "clean"]), default="hard", show_default=True,
              help="avdigits: degraded so neither modality suffices alone (hard), or as recorded (clean).")
@click.option("--seed", type=int, default=0, show_default=True, help="avdigits: pairing and split seed.")
@click.option("--source", type=click.Path(file_okay=False), help="emoji: unpacked npm package folder (default: data/npm/...).")
def export_dataset(name: str, out_dir: str, variant: str, seed: int, source: str | None) -> None:
    """Write dataset NAME to OUT_DIR as train/valid/test CSVs plus the files they point to.

    avdigits: MNIST images paired by digit with spoken-digit MFCC sequences (columns image, audio, digit).
    emoji: Google emoji images with their names (columns image, name, category).
    """
    from ..datasets import avdigits, emoji

    paths = avdigits.export(out_dir, variant, seed) if name == "avdigits" else emoji.export(out_dir, source)
    for split, path in paths.items():
        console.print(f"{split}: {path}")


@main.command()
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


def entry() -> None:
    """Console-script entry: user errors become one line on stderr and exit code 2."""
    try:
        main(standalone_mode=True)
    except MMFuseError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
