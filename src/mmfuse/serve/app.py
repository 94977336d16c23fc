"""The FastAPI application: ``create_app(path)`` serves a saved model or a search index.

    POST /predict    rows as JSON ({"rows": [{column: value}], "explain": true}) or one row as a multipart form
    POST /search     a text query as JSON ({"text": ..., "k": 5}) or an image / audio query as a multipart upload
    GET  /health, /metadata, /docs (OpenAPI), / (the web page), /items/{i} (an indexed item's file, for thumbnails)

Bad input is a 4xx with ``{"error": ..., "field": ...}``; a request is preprocessed and predicted under a lock (the
model is shared, read-only) within ``timeout_seconds``: past it the client gets a 503 and the work stops at its next
check (between files, batches and members, ``core.deadline``), so it frees the lock for the next request; a request
still waiting for the lock at its deadline never starts. Every answer is JSON except the page and item files, and
none names the server's own folders.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

from ..core.deadline import DeadlineExceeded, deadline
from ..estimators.contributions import row_contributions
from ..errors import BundleError, MMFuseError
from ..io.bounded_json import loads
from ..estimators import Predictor, Retriever, load
from ..estimators.index import SearchIndex
from ..version import __version__
from .limits import BodyLimit, BodyTooLarge, BodyTooSlow, ServeLimits, log_disconnect
from .requests import RequestError, Upload, cell_of, check_pixels, decode_base64, request_table


def create_app(path: str | Path, limits: ServeLimits = ServeLimits(), cache_dir: str | Path | None = None,
               backend: str = "torch") -> Any:
    """An ASGI app serving the model or index folder at ``path`` (loaded now, once); ``backend="onnx"`` runs a
    model's network from MODEL/model.onnx (``mmfuse export``) with onnxruntime."""
    folder = Path(path)
    if (folder / "index.json").is_file():
        index = SearchIndex.load(folder)
        served: Predictor | SearchIndex = index
        retriever = load(index.model, verbose=False, cache_dir=cache_dir)
    else:
        model = load(folder, verbose=False, cache_dir=cache_dir) if backend == "torch" else \
            Predictor.load(folder, verbose=False, cache_dir=cache_dir, backend=backend)
        if isinstance(model, Retriever):
            raise BundleError(f"{folder} is a retrieval model: serve an index built with it (mmfuse index)")
        model.set_params(on_bad_row="mask")  # a bad upload: predicted without it, and the answer says so
        served, retriever = model, None
    # requests read the feature cache (the training data's features) but never add to it: uploads must not fill a disk
    pipeline = (retriever or served).pipeline_
    pipeline.use_cache(cache_dir, write=False)
    for processor in pipeline.processors.values():
        processor.warm_up()  # frozen backbones load now, not on the first request
    app = FastAPI(title="mmfuse", version=__version__,
                  description="Predictions and search from a saved mmfuse model or index.")
    lock = threading.Lock()

    async def guarded(work: Callable[[], Any]) -> Any:
        at = time.monotonic() + limits.timeout_seconds

        def locked() -> Any:
            if not lock.acquire(timeout=max(at - time.monotonic(), 0.0)):
                raise DeadlineExceeded
            try:
                with deadline(at):
                    return work()
            finally:
                lock.release()
        try:
            return await asyncio.wait_for(run_in_threadpool(locked), limits.timeout_seconds)
        except (asyncio.TimeoutError, DeadlineExceeded):
            return error(503, f"the request took longer than {limits.timeout_seconds:g} s")

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return error(413, f"request body larger than {limits.max_body_bytes} bytes")

    @app.exception_handler(BodyTooSlow)
    async def too_slow(request: Request, exc: BodyTooSlow) -> JSONResponse:
        return error(408, f"request body not received within {limits.body_seconds:g} s")

    @app.exception_handler(ClientDisconnect)
    async def gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        log_disconnect(request.scope)
        return error(400, "the client went away")  # (nobody reads it)

    @app.exception_handler(RequestError)
    async def bad_field(request: Request, exc: RequestError) -> JSONResponse:
        return error(422, exc.message, exc.field)

    @app.exception_handler(MMFuseError)
    async def bad_data(request: Request, exc: MMFuseError) -> JSONResponse:
        return error(422, str(exc))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    about = index_metadata(served, retriever) if retriever else model_metadata(served)  # fixed: the model is read-only
    page_files = {name: resources.files("mmfuse.serve").joinpath(f"static/{name}").read_text()
                  for name in ("index.html", "app.js", "style.css")}

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        return about

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return page_files["index.html"]

    @app.get("/static/{name}")
    def static(name: str) -> Any:
        if name not in ("app.js", "style.css"):
            return error(404, f"no static file {name!r}")
        return HTMLResponse(page_files[name], media_type="text/javascript" if name.endswith(".js") else "text/css")

    if retriever is None:
        @app.post("/predict")
        async def predict(request: Request) -> Any:
            rows, explain = await read_rows(request, limits)
            return await guarded(lambda: predict_rows(served, rows, explain, limits))
    else:
        @app.post("/search")
        async def search(request: Request) -> Any:
            query, k = await read_query(request, retriever)
            return await guarded(lambda: search_index(served, retriever, query, k, limits))

        @app.get("/items/{position}")
        def item(position: int) -> Any:
            root = served.root
            if not root or not 0 <= position < len(served.values):
                return error(404, "no such item file")
            file = Path(root) / served.values[position]
            return FileResponse(file) if file.is_file() else error(404, "no such item file")

    return BodyLimit(app, limits.max_body_bytes, limits.body_seconds)


def error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, **({"field": field} if field else {})}, status_code=status)


# --- reading requests ------------------------------------------------------------------------------------------
async def read_rows(request: Request, limits: ServeLimits) -> tuple[list[dict[str, Any]], bool]:
    """JSON ``{"rows": [...], "explain": bool}`` or one multipart row (files as uploads, ``explain`` a field)."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        row: dict[str, Any] = {}
        for name, value in form.multi_items():
            if name == "explain":
                continue
            value = Upload(value.filename or "", await value.read()) if isinstance(value, UploadFile) else value
            row[name] = [*row[name], value] if isinstance(row.get(name), list) else (
                [row[name], value] if name in row else value)  # a field given twice: a set of uploads
        return [row], str(form.get("explain", "true")).lower() not in ("false", "0", "no")
    body = await json_body(request)
    rows = body.get("rows")
    if not isinstance(rows, list) or not rows:
        raise RequestError("rows", "expected a non-empty list of rows (objects of column: value)")
    if len(rows) > limits.max_rows:
        raise RequestError("rows", f"{len(rows)} rows; this server takes at most {limits.max_rows} per request")
    explain = body.get("explain", True)
    if not isinstance(explain, bool):
        raise RequestError("explain", "expected true or false")
    return rows, explain


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = loads(await request.body(), "the body")
    except ValueError as err:
        raise RequestError("body", str(err)) from None
    if not isinstance(body, dict):
        raise RequestError("body", "expected a JSON object")
    return body


async def read_query(request: Request, retriever: Retriever) -> tuple[tuple[str, Any], int]:
    """A search query: (modality, text or file bytes), and k."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        fields = {name: value for name, value in form.multi_items()}
        k = fields.pop("k", "5")
    else:
        fields = await json_body(request)
        k = fields.pop("k", 5)
    try:
        k = int(k)
    except (TypeError, ValueError):
        raise RequestError("k", "expected a whole number of results") from None
    if not 1 <= k <= 100:
        raise RequestError("k", "expected 1 to 100 results")
    kinds = tower_modalities(retriever)
    given = {m: v for m, v in fields.items() if m in kinds and v not in (None, "")}
    if len(given) != 1 or set(fields) - set(given):
        raise RequestError("query", f"give exactly one of {' or '.join(kinds)} (and optionally k)")
    modality, value = next(iter(given.items()))
    if cell_of(modality).file:
        value = await value.read() if isinstance(value, UploadFile) else decode_base64(str(value), modality)
    elif not isinstance(value, str):
        raise RequestError(modality, "expected a string")
    return (modality, value), k


def column_modality(retriever: Retriever, column: str) -> str:
    return next(c.modality for c in retriever.columns_ if c.name == column)


def tower_modalities(retriever: Retriever) -> list[str]:
    """The modalities of a retrieval model's two columns: what a search may be given."""
    return sorted({column_modality(retriever, retriever.query), column_modality(retriever, retriever.target)})


# --- answering ---------------------------------------------------------------------------------------------------
def predict_rows(predictor: Predictor, rows: list[dict[str, Any]], explain: bool, limits: ServeLimits) -> dict:
    """Predictions (and contributions) for request rows; unreadable files are masked and said so per row."""
    with tempfile.TemporaryDirectory(prefix="mmfuse-request-") as tmp:
        try:
            table = request_table(rows, predictor.columns_, Path(tmp), limits.max_pixels)
            values, split = predictor.prepare(table, "request")
            result = row_contributions(predictor, split, frame=values, root=Path(tmp)) if explain else None
            outputs = result.outputs if result else predictor.predict_outputs(split)
        except RequestError as err:
            raise RequestError(err.field, without_folder(err.message, tmp)) from None
        except MMFuseError as err:
            raise type(err)(without_folder(str(err), tmp)) from None
    frame = predictor.task_.prediction_frame(outputs)
    classes = predictor.task_.classes
    notes = [[without_folder(note, tmp) for note in row] for row in row_notes(split.report, len(rows))]
    explains = result.explains(classes) if result is not None else []
    answers = []
    for i in range(len(outputs)):
        answer: dict[str, Any] = {"prediction": _plain(frame["prediction"].iloc[i]),
                                  "inputs_used": [n for n in sorted(split.present) if bool(split.present[n][i])]}
        if classes is not None:
            answer["probabilities"] = {str(c): float(outputs[i, k]) for k, c in enumerate(classes)}
        if result is not None:
            answer["contributions"] = {
                "explains": explains[i],
                "removal": {n: float(v[i]) for n, v in result.removal.items()},
                "columns": {n: float(v[i]) for n, v in result.columns.items()},
                "shapley": {n: float(v[i]) for n, v in result.shapley.items()} if result.shapley else None}
        answer["notes"] = notes[i]
        answers.append(answer)
    return {"task": predictor.task_.name, "predictions": answers}


def without_folder(text: Any, folder: str) -> Any:
    """``text`` with the request's temporary folder left out (its files are named by row and column)."""
    return text.replace(f"{folder}/", "").replace(folder, "the request") if isinstance(text, str) else text


def row_notes(report: dict[str, Any], n_rows: int) -> list[list[str]]:
    """Per row, what preprocessing did to its values (masked, empty, unseen category, cut)."""
    notes: list[list[str]] = [[] for _ in range(n_rows)]
    for column, kinds in report["columns"].items():
        for kind, entry in kinds.items():
            for row in entry["rows"]:
                detail = f": {entry['first']}" if kind == "masked" and entry.get("first") and len(entry["rows"]) == 1 \
                    else ""
                notes[row].append(f"{column}: {kind.replace('_', ' ')}{detail}")
    return notes


def search_index(index: SearchIndex, retriever: Retriever, query: tuple[str, Any], k: int,
                 limits: ServeLimits) -> dict:
    modality, value = query
    tower = retriever.tower_of_modality(modality)
    cell = cell_of(modality)
    if not cell.file:
        vector = retriever.embed_values(tower, [value])[0]
    else:
        with tempfile.TemporaryDirectory(prefix="mmfuse-query-") as tmp:
            check_pixels(value, modality, limits.max_pixels)
            (Path(tmp) / f"query{cell.suffix}").write_bytes(value)
            try:
                vector = retriever.embed_values(tower, [f"query{cell.suffix}"], tmp)[0]
            except MMFuseError as err:
                raise type(err)(without_folder(str(err), tmp)) from None
    files = bool(index.root) and cell_of(column_modality(retriever, index.tower)).file
    return {"query": modality, "results": [
        {"rank": rank, "score": score, "row": index.rows[i], "value": index.values[i],
         **({"file": f"/items/{i}"} if files else {}), **{c: v[i] for c, v in index.extra.items()}}
        for rank, (i, score) in enumerate(index.search(vector, k), start=1)]}


def model_metadata(predictor: Predictor) -> dict[str, Any]:
    about = predictor.describe()
    categories = {}  # column -> the values the page offers in a select
    for processor in predictor.pipeline_.processors.values():
        categories |= processor.known_categories()
    sets = {c.name for c in predictor.columns_ if "set" in c.traits}  # several values per cell: a list
    return {"kind": "model", "task": about["task"], "label": about["label"], "classes": about.get("classes"),
            "columns": [{"name": i["column"], "modality": i["modality"], "encoder": i["encoder"],
                         **page_field(i["modality"]), "set": i["column"] in sets,
                         **({"categories": categories[i["column"]]} if i["column"] in categories else {})}
                        for i in about["inputs"] if i["modality"] != "ignore"],
            "metrics": about["metrics"].get("valid", {}), "mmfuse": __version__, "trained_with": about["mmfuse"],
            "bundle_format": predictor.bundle_format_}


def page_field(modality: str) -> dict[str, Any]:
    """What the page needs to draw a field for a modality's cells (its registration's ``Cell``)."""
    cell = cell_of(modality)
    return {"widget": cell.widget, "file": cell.file, "accept": cell.accept, "hint": cell.hint}


def index_metadata(index: SearchIndex, retriever: Retriever) -> dict[str, Any]:
    return {"kind": "index", "column": index.column, "tower": index.tower, "items": len(index.rows),
            "queries": [{"name": m, "modality": m, "encoder": "query", **page_field(m)}
                        for m in tower_modalities(retriever)],
            "thumbnails": bool(index.root), "columns": list(index.extra), "mmfuse": __version__}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
