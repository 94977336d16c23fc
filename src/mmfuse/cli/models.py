"""The commands that use a saved model: ``evaluate``, ``predict``, ``leaderboard``, ``info``, ``export`` and
``serve``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import DataError
from . import render
from .console import console, errors, progress_bars, setup_logging
from .options import (FiniteFloat, bad_row_override, cache_option, encoding_option, load_model, runtime_options, source,
                      threads_option, write_csv)

MODEL = click.argument("model", type=click.Path(file_okay=False))
MEMBER = click.option("--member", metavar="NAME",
                      help="Use one member of the model's portfolio alone (mmfuse leaderboard lists them).")


@click.command()
@MODEL
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print metrics as JSON.")
@click.option("--confusion", type=click.Path(dir_okay=False), help="Also write a confusion-matrix PNG here.")
@click.option("--robustness", is_flag=True,
              help="Also: the score with each input removed, Shapley contributions, and corruption curves.")
@click.option("--robustness-plot", type=click.Path(dir_okay=False), help="Also draw the robustness curves here (PNG).")
@click.option("--importance", is_flag=True,
              help="Also: each column's importance, the drop in the primary metric when its values are shuffled "
                   "between rows (numbers and categories one by one), beside its input's Shapley value.")
@click.option("--importance-method", type=click.Choice(["permute", "mask"]), default="permute", show_default=True,
              help="permute: shuffle the column's values between rows; mask: remove the column (as missing).")
@click.option("--importance-repeats", type=click.IntRange(min=1), default=5, show_default=True,
              help="Shuffles per column (mean and standard deviation).")
@click.option("--importance-plot", type=click.Path(dir_okay=False), help="Also draw the importance bars here (PNG).")
@click.option("--zero-shot", "zero_shot", metavar="LABEL",
              help="Retrieval models: also classify by nearest class-name prompt, scored against column LABEL.")
@click.option("--prompt", default="{}", show_default=True, help="With --zero-shot: prompt text, {} = the class name.")
@MEMBER
@bad_row_override
@cache_option
@threads_option
@runtime_options
@encoding_option
def evaluate(model: str, data: str, as_json: bool, confusion: str | None, robustness: bool,
             robustness_plot: str | None, importance: bool, importance_method: str, importance_repeats: int,
             importance_plot: str | None, zero_shot: str | None, prompt: str, member: str | None, on_bad_row: str | None,
             cache_dir: str | None, threads: int | None, device: str | None, workers: int | None,
             encoding: str | None) -> None:
    """Score MODEL on a labelled table DATA (retrieval models: on a table of pairs)."""
    setup_logging(as_json)  # --json: warnings (and progress) still go to stderr
    data = source(data, encoding)
    with progress_bars() as progress:
        estimator = load_model(model, on_bad_row, threads, cache_dir=cache_dir, device=device, workers=workers,
                               progress=progress)
        if estimator.is_retrieval:
            if confusion or robustness or robustness_plot or importance or importance_plot:
                raise DataError("--confusion, --robustness and --importance are for classification and regression "
                                "models, not retrieval")
            return _evaluate_retrieval(estimator, data, as_json, zero_shot, prompt)
        if zero_shot:
            raise DataError("--zero-shot needs a retrieval model (mmfuse fit --task retrieval)")
        estimator.set_params(member=member)
        metrics = estimator.evaluate(data, confusion_plot=confusion)
        report = _robustness(estimator, data, robustness_plot, progress) if robustness or robustness_plot else None
        ranking, removal = (_importance(estimator, data, importance_method, importance_repeats, importance_plot,
                                        report, progress) if importance or importance_plot else (None, None))
    written = [f"wrote {what} to {path}" for what, path in (("the confusion matrix", confusion),
                                                              ("the robustness curves", robustness_plot),
                                                              ("the importance bars", importance_plot)) if path]
    if as_json:
        extra = {**({"robustness": report.to_dict()} if report else {}),
                 **({"importance": {**ranking.to_dict(), "input_shapley": removal.shapley,
                                    "input_shapley_metric": removal.metric}} if ranking else {})}
        click.echo(json.dumps({**metrics, **extra}, indent=2))
    else:
        console.print(render.metrics_table(Path(getattr(data, "path", data)).name, metrics))
        for table in render.robustness_tables(report) if report else []:
            console.print(table)
        if ranking:
            console.print(render.importance_table(ranking, removal.shapley, removal.metric))
    for line in written:  # with --json, on stderr: stdout stays JSON
        (errors if as_json else console).print(line, highlight=False, soft_wrap=True)


def _importance(estimator: Any, data: Any, method: str, repeats: int, plot: str | None, report: Any,
                progress: Any) -> tuple[Any, Any]:
    """(each column's importance, the robustness report whose ``shapley`` gives each input's Shapley value (None
    beyond 4 inputs)), the bars drawn to ``plot``; the report is ``report`` when the robustness analysis ran, else
    one of removals alone."""
    from ..analysis.robustness import robustness as analyse
    from ..estimators.importance import column_importance
    from ..plots import plot_importance

    ranking = column_importance(estimator, data, method, repeats, progress=progress)
    removal = report or analyse(estimator, data, progress=progress, curves=False)
    if plot:
        plot_importance(ranking.frame(), ranking.change, plot)
    return ranking, removal


def _robustness(estimator: Any, data: Any, plot: str | None, progress: Any) -> Any:
    """The robustness report of a model on a table, its curves drawn to ``plot`` when given."""
    from ..analysis.robustness import robustness as analyse
    from ..plots import plot_robustness

    report = analyse(estimator, data, progress=progress)
    if plot:
        plot_robustness(report.curves, report.levels, report.metric, plot)
    return report


def _evaluate_retrieval(retriever: Any, data: Any, as_json: bool, zero_shot: str | None, prompt: str) -> None:
    metrics = retriever.evaluate(data)
    shot = retriever.zero_shot(data, zero_shot, prompt) if zero_shot else None
    if as_json:
        click.echo(json.dumps({**metrics, **({"zero_shot": shot} if shot else {})}, indent=2))
        return
    name = Path(getattr(data, "path", data)).name
    console.print(render.retrieval_table(f"{name}: retrieval among {metrics['pairs']} pairs", metrics,
                                         retriever.query, retriever.target))
    if shot:
        console.print(f"zero-shot classification of {zero_shot!r} ({shot['classes']} classes, prompt {prompt!r}, "
                      f"{shot['rows']} rows): accuracy {shot['accuracy']:.3f}")


@click.command()
@MODEL
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--out", default="predictions.csv", show_default=True, type=click.Path(dir_okay=False),
              help="CSV to write (missing folders are created; written whole or not at all).")
@click.option("--threshold", type=FiniteFloat(0, 1), help="Multilabel decision threshold (default: the model's).")
@click.option("--explain", is_flag=True,
              help="Also what each prediction owes each input and each number or category column: contribution_<name> "
                   "(the predicted class's probability, or the value, minus the same without it) and, for at most 4 "
                   "inputs, shapley_<input>.")
@click.option("--keep", multiple=True, metavar="COLUMN",
              help="Copy this column of DATA into the output as it is (an ID to join on); repeatable. Columns the "
                   "model ignored as IDs are copied anyway.")
@MEMBER
@bad_row_override
@cache_option
@threads_option
@runtime_options
@encoding_option
def predict(model: str, data: str, out: str, threshold: float | None, explain: bool, keep: tuple[str, ...],
            member: str | None, on_bad_row: str | None, cache_dir: str | None, threads: int | None,
            device: str | None, workers: int | None, encoding: str | None) -> None:
    """Write predictions for DATA: row, the --keep and ID columns, inputs_used, prediction and one proba_<class>
    column per class."""
    setup_logging()
    with progress_bars() as progress:
        predictor = load_model(model, on_bad_row, threads, cache_dir=cache_dir, device=device, workers=workers,
                               progress=progress)
        if predictor.is_retrieval:
            raise DataError(f"{model} is a retrieval model: use mmfuse index and mmfuse search")
        if threshold is not None:
            predictor.set_params(threshold=threshold)
        predictor.set_params(member=member)
        frame = predictor.predict_frame(source(data, encoding), explain=explain, keep=list(keep))
    write_csv(frame, Path(out))
    console.print(f"wrote {len(frame)} predictions to {out}")


@click.command()
@MODEL
@click.argument("test", required=False, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the leaderboard as JSON records.")
@threads_option
@encoding_option
def leaderboard(model: str, test: str | None, as_json: bool, threads: int | None, encoding: str | None) -> None:
    """Each member of MODEL: validation score, ensemble weight, fit seconds, prediction ms per row, and with a
    labelled TEST table its score there."""
    setup_logging(as_json)
    predictor = load_model(model, None, threads, verbose=False)
    if predictor.is_retrieval:
        raise DataError(f"{model} is a retrieval model: it has no members to compare")
    board = predictor.leaderboard(source(test, encoding))
    if as_json:
        click.echo(board.to_json(orient="records", indent=2))
    else:
        console.print(render.leaderboard_table(f"{model}: leaderboard", board))


@click.command()
@MODEL
def info(model: str) -> None:
    """Show a saved model's columns, encoders, task and metrics (read from its files: no plugin is imported and no
    member parsed, so info works on any model folder)."""
    from ..estimators.about import about_folder

    setup_logging()
    about = about_folder(model) or load_model(model, verbose=False).describe()  # formats 1-3: the loaded model
    what = f"query {about['query']!r} <-> target {about['target']!r}" if "query" in about else \
        f"label {about['label']!r}"
    classes = f", {len(about['classes'])} classes" if about.get("classes") else ""
    console.print(f"[bold]{model}[/bold]  mmfuse {about['mmfuse']}, {what}, task {about['task']}{classes}")
    if about["plugins"]:
        console.print(f"plugins: {', '.join(about['plugins'])}")
    console.print(render.inputs_table(about))
    console.print(f"shared embedding: {about['embed_dim']}-d, cosine similarity" if "query" in about else
                  f"fusion: {about['fusion']}; head: {about['head'] or 'linear'}")
    if "members" in about:  # a portfolio
        console.print("ensemble weights: " + ", ".join(f"{n} {w:.2f}" for n, w in about["members"].items()))
    metrics = about["metrics"]
    if not metrics:
        console.print("no training figures: metrics.json is not in this folder (optional; the model works without it)")
    elif "epochs" in metrics:
        network = f"the network: {metrics['epochs']} epochs" if metrics["epochs"] else "the network did not train"
        if metrics.get("restored_epoch"):
            network += f", epoch {metrics['restored_epoch']} kept"
        if metrics.get("stopped"):
            network += f", stopped by {metrics['stopped']}"
        console.print(f"fit in {metrics.get('fit_seconds')} s (the whole fit); {network}; "
                      f"{metrics.get('parameters', 0):,} parameters")
    for split, values in metrics.items():
        if isinstance(values, dict) and all(isinstance(v, (int, float)) for v in values.values()):
            console.print(render.metrics_table(split, values))


@click.command()
@MODEL
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True, help="Graph format.")
@click.option("--out", type=click.Path(dir_okay=False), help="File to write [default: MODEL/model.onnx].")
def export(model: str, fmt: str, out: str | None) -> None:
    """Export MODEL for ONNX Runtime: its network (encoders, fusion, head; fp32), and for a portfolio every member
    the ensemble reads (linear models, LightGBM's trees), the weights and the calibration, in one graph.

    Preprocessing stays the model's processors; frozen pretrained backbones enter as their cached features.
    Predict with it: Predictor.load(MODEL, backend="onnx", onnx_path=OUT), or mmfuse serve MODEL --backend onnx (which
    reads MODEL/model.onnx, the default OUT).
    """
    from ..estimators.onnx import OPSET, export_onnx

    setup_logging()
    predictor = load_model(model, verbose=False)
    if predictor.is_retrieval:
        raise DataError(f"{model} is a retrieval model: export is for classification and regression models")
    path = export_onnx(predictor, out or Path(model) / "model.onnx")
    what = f"every member of the ensemble: {', '.join(predictor.portfolio_.needed())}" if predictor.portfolio_ \
        else "the network, fp32"
    console.print(f"wrote {path} (ONNX opset {OPSET}; {what}; {path.stat().st_size / 1e6:.1f} MB)")


@click.command()
@click.argument("path", metavar="MODEL_OR_INDEX", type=click.Path(file_okay=False, exists=True))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--max-body-mb", default=20.0, show_default=True, type=FiniteFloat(min=0, min_open=True),
              help="Largest request body (JSON, base64 or uploads), in MB.")
@click.option("--max-rows", default=256, show_default=True, type=click.IntRange(min=1), help="Most rows per /predict.")
@click.option("--timeout", default=30.0, show_default=True, type=FiniteFloat(min=0, min_open=True),
              help="Seconds a request's work may take (past it: 503, and the work stops, freeing the model).")
@click.option("--body-timeout", default=30.0, show_default=True, type=FiniteFloat(min=0, min_open=True),
              help="Seconds a client may take to send a request's body (past it: 408).")
@click.option("--max-megapixels", default=25.0, show_default=True, type=FiniteFloat(min=0, min_open=True),
              help="Largest uploaded image.")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True,
              help="Run the network with PyTorch, or with onnxruntime from MODEL/model.onnx (mmfuse export).")
@cache_option
@threads_option
def serve(path: str, host: str, port: int, max_body_mb: float, max_rows: int, timeout: float, body_timeout: float,
          max_megapixels: float, backend: str, cache_dir: str | None, threads: int | None) -> None:
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
    limits = ServeLimits(int(max_body_mb * 1024 * 1024), max_rows, timeout, int(max_megapixels * 1e6), body_timeout)
    app = create_app(path, limits, cache_dir, backend)
    console.print(f"serving {path} on http://{host}:{port}/  (API: http://{host}:{port}/docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
