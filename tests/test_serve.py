"""``mmfuse serve``'s API, in-process (TestClient): predictions with per-row contributions, search, metadata, and
bad requests answered with a 4xx naming the field, never a 500. One fitted model and one index are shared."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import time

import numpy as np
import pandas as pd
import pytest
from conftest import make_table
from corpus import png_header_only
from fastapi.testclient import TestClient
from PIL import Image

from mmfuse import Predictor, Retriever
from mmfuse.core.shapley import shapley_values
from mmfuse.estimators.index import build_index
from mmfuse.io.bundle import FORMAT_VERSION
from mmfuse.serve import ServeLimits, create_app


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A model on text, image, x, colour -> y (binary) and a test client for it."""
    folder = tmp_path_factory.mktemp("serve")
    make_table(folder, n=160, seed=0).to_csv(folder / "train.csv", index=False)
    make_table(folder, n=20, seed=2).to_csv(folder / "test.csv", index=False)
    Predictor(label="y", preset="fast", max_epochs=4, threads=2, progress=False, verbose=False, ignore=["id"]).fit(
        folder / "train.csv").save(folder / "model")
    client = TestClient(create_app(folder / "model", ServeLimits(max_body_bytes=2_000_000, max_rows=8,
                                                                 max_pixels=1_000_000)))
    return folder, client


def b64(path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def rows_of(folder, n=3):
    test = pd.read_csv(folder / "test.csv").head(n)
    return test, [{"text": t, "image": b64(folder / i), "x": x, "colour": c}
                  for t, i, x, c in zip(test["text"], test["image"], test["x"], test["colour"])]


def test_predict_json_matches_the_library_and_explains_each_row(served):
    folder, client = served
    test, rows = rows_of(folder)
    answer = client.post("/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    library = Predictor.load(folder / "model", verbose=False).predict_proba(folder / "test.csv").head(3)
    explained = Predictor.load(folder / "model", verbose=False).predict_frame(folder / "test.csv", explain=True)
    for p, (_, expected), (_, mine) in zip(predictions, library.iterrows(), explained.iterrows()):
        assert p["probabilities"] == pytest.approx({str(k): v for k, v in expected.items()}, abs=1e-5)
        assert p["inputs_used"] == ["image", "tabular", "text"] and p["notes"] == []
        shapley, removal = p["contributions"]["shapley"], p["contributions"]["removal"]
        assert set(shapley) == set(removal) == {"image", "tabular", "text"}
        columns = p["contributions"]["columns"]  # the tabular input's two columns, one by one
        assert set(columns) == {"x", "colour"}
        assert p["contributions"]["explains"] == mine["explains"]
        for name, value in {**removal, **columns}.items():  # the same figures as predict --explain's
            assert value == pytest.approx(mine[f"contribution_{name}"], abs=1e-5)
        chosen = max(p["probabilities"], key=p["probabilities"].get)
        assert p["contributions"]["explains"] == f"probability of {chosen}"
    # efficiency: Shapley values add up to v(all) - v(none), checked against a direct per-row computation
    predictor = Predictor.load(folder / "model", verbose=False)
    _, split = predictor.prepare(folder / "test.csv")
    everything = frozenset(predictor.inputs_)
    full = predictor.predict_outputs(split)[:3]
    top = full.argmax(1)

    def value(present):
        return predictor.predict_outputs(split, absent=everything - present)[:3][np.arange(3), top]

    direct = shapley_values(value, predictor.inputs_)
    for i, p in enumerate(predictions):
        assert p["contributions"]["shapley"] == pytest.approx({n: float(v[i]) for n, v in direct.items()}, abs=1e-5)


def test_predict_multipart_form_with_an_upload(served):
    folder, client = served
    test, _ = rows_of(folder, 1)
    with open(folder / test["image"][0], "rb") as f:
        answer = client.post("/predict", data={"text": test["text"][0], "x": str(test["x"][0]),
                                               "colour": test["colour"][0], "explain": "false"},
                             files={"image": ("any-name.png", f, "image/png")})
    assert answer.status_code == 200, answer.text
    p = answer.json()["predictions"][0]
    assert "contributions" not in p and p["inputs_used"] == ["image", "tabular", "text"]


def test_a_missing_or_broken_input_is_masked_and_said(served):
    folder, client = served
    _, rows = rows_of(folder, 2)
    del rows[0]["image"]
    rows[1]["image"] = base64.b64encode(b"not an image at all").decode()
    answer = client.post("/predict", json={"rows": rows, "explain": False}).json()["predictions"]
    assert answer[0]["inputs_used"] == ["tabular", "text"] and "image: empty" in answer[0]["notes"]
    assert answer[1]["inputs_used"] == ["tabular", "text"] and answer[1]["notes"][0].startswith("image: masked")
    assert "mmfuse-request-" not in json.dumps(answer) and "/tmp" not in json.dumps(answer)  # no server path


def test_a_timed_out_request_frees_the_model_for_the_next(served, monkeypatch):
    """Past its timeout a request gets its 503 and its work stops at the next check, so the next request is served
    at once, not after the first one's work (threads cannot be cancelled: the work checks its deadline)."""
    folder, _ = served
    from mmfuse.core.deadline import check_deadline

    client = TestClient(create_app(folder / "model", ServeLimits(timeout_seconds=1.0)))
    prepare, slow = Predictor.prepare, {"calls": 0}

    def endless_prepare(self, *args, **kwargs):  # the first request's work would take 10 s
        slow["calls"] += 1
        until = time.monotonic() + 10
        while slow["calls"] == 1 and time.monotonic() < until:
            check_deadline()
            time.sleep(0.01)
        return prepare(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, "prepare", endless_prepare)
    _, rows = rows_of(folder, 1)
    start = time.perf_counter()
    first = client.post("/predict", json={"rows": rows, "explain": False})
    assert first.status_code == 503 and "longer than 1 s" in first.json()["error"]
    second = client.post("/predict", json={"rows": rows, "explain": False})
    assert second.status_code == 200 and time.perf_counter() - start < 2.0 + 1.0


def asgi_post(app, chunks, pause: float):
    """POST /predict through the ASGI app with the body in ``chunks`` (a chunk of None: the client goes away),
    ``pause`` seconds apart; -> (status, body) of the answer."""
    sent = []

    async def run():
        queue = list(chunks)

        async def receive():
            await asyncio.sleep(pause)
            chunk = queue.pop(0) if queue else b""
            if chunk is None:
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": chunk, "more_body": bool(queue)}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/predict", "headers": [(b"content-type", b"application/json")],
                 "query_string": b"", "root_path": "", "http_version": "1.1", "scheme": "http",
                 "server": ("test", 80), "client": ("test", 1)}
        await app(scope, receive, send)

    asyncio.run(run())
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_a_slow_body_is_answered_408_and_a_disconnect_is_one_log_line(served, caplog):
    folder, _ = served
    app = create_app(folder / "model", ServeLimits(body_seconds=0.3))
    status, body = asgi_post(app, [b'{"rows": ', b"[]", b"}"], pause=0.2)
    assert status == 408 and b"not received within 0.3 s" in body
    with caplog.at_level(logging.WARNING, logger="mmfuse"):
        asgi_post(app, [b'{"rows": ', None], pause=0.0)  # (what it is answered, nobody reads)
    assert [r.getMessage() for r in caplog.records] == [
        "POST /predict: the client went away before its request was read; nothing was done"]


@pytest.mark.parametrize("body, status, field", [
    (b"{not json", 422, "body"),
    (b"[1, 2]", 422, "body"),
    (json.dumps({"rows": []}).encode(), 422, "rows"),
    (json.dumps({"rows": [{"text": "a"}] * 9}).encode(), 422, "rows"),
    (json.dumps({"rows": ["text"]}).encode(), 422, "rows[0]"),
    (json.dumps({"rows": [{"nope": 1}]}).encode(), 422, "rows[0].nope"),
    (json.dumps({"rows": [{"image": "/etc/passwd"}]}).encode(), 422, "rows[0].image"),
    (json.dumps({"rows": [{"image": "../img/0_1.png"}]}).encode(), 422, "rows[0].image"),
    (json.dumps({"rows": [{"text": {"a": 1}}]}).encode(), 422, "rows[0].text"),
    (json.dumps({"rows": [{"text": "a"}], "explain": "yes"}).encode(), 422, "explain"),
    (b'{"rows": ' + b"[" * 5000 + b"]" * 5000 + b"}", 422, "body"),  # nested past Python's recursion limit
    (b'{"rows": [{"text": "\xff\xfe"}]}', 422, "body"),  # not UTF-8
    (b'{"rows": [{"text": "a \\ud800"}]}', 422, "rows[0].text"),  # half a surrogate pair
    (b'{"rows": [{"colour": "\\udfff"}]}', 422, "rows[0].colour"),
    (b'{"rows": [{"\\ud800": 1}]}', 422, "rows[0].\ufffd"),
    (b"x" * 2_000_001, 413, None),
])
def test_malformed_requests_get_a_4xx_naming_the_field(served, body, status, field):
    answer = served[1].post("/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    assert answer.json().get("field") == field and answer.json()["error"]


def test_a_path_in_a_request_is_never_read(served, tmp_path):
    folder, client = served
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8), "red").save(secret)
    answer = client.post("/predict", json={"rows": [{"image": str(secret)}]})
    assert answer.status_code == 422 and "does not read paths" in answer.json()["error"]


def test_image_over_the_servers_pixel_limit(served, tmp_path):
    bomb = png_header_only(tmp_path / "bomb.png", 5_000, 5_000)
    answer = served[1].post("/predict", json={"rows": [{"image": b64(bomb)}]})
    assert answer.status_code == 422 and answer.json()["field"] == "rows[0].image" and "megapixels" in answer.json()["error"]


def test_health_metadata_page_and_docs(served):
    client = served[1]
    assert client.get("/health").json() == {"status": "ok"}
    meta = client.get("/metadata").json()
    assert meta["kind"] == "model" and meta["task"] == "binary" and meta["classes"] == [0, 1]
    assert {c["name"]: c["modality"] for c in meta["columns"]} == {"text": "text", "image": "image", "x": "numeric",
                                                                  "colour": "categorical"}
    assert sorted(next(c for c in meta["columns"] if c["name"] == "colour")["categories"]) == ["a", "b", "c"]
    assert meta["bundle_format"] == FORMAT_VERSION and "accuracy" in meta["metrics"]
    page = client.get("/").text
    assert "<script src=\"/static/app.js\"></script>" in page and "http" not in page.replace("http-equiv", "")
    assert "fetch(" in client.get("/static/app.js").text and client.get("/static/other.js").status_code == 404
    assert "/predict" in client.get("/openapi.json").json()["paths"]


@pytest.fixture(scope="module")
def index_client(tmp_path_factory):
    from test_retrieval import pair_table

    folder = tmp_path_factory.mktemp("index")
    pair_table(folder, 160, 0).to_csv(folder / "train.csv", index=False)
    pair_table(folder, 32, 1).to_csv(folder / "items.csv", index=False)
    retriever = Retriever(query="caption", target="image", preset="fast", max_epochs=8, threads=2, progress=False,
                          verbose=False).fit(folder / "train.csv")
    retriever.save(folder / "retriever")
    build_index(Retriever.load(folder / "retriever", verbose=False), folder / "items.csv", "image").save(folder / "index")
    return folder, TestClient(create_app(folder / "index"))


def test_search_by_text_and_by_image_with_thumbnails(index_client):
    folder, client = index_client
    by_text = client.post("/search", json={"text": "a red block at the top", "k": 3})
    assert by_text.status_code == 200, by_text.text
    results = by_text.json()["results"]
    assert [r["rank"] for r in results] == [1, 2, 3] and results[0]["score"] >= results[-1]["score"]
    thumb = client.get(results[0]["file"])
    assert thumb.status_code == 200 and thumb.content[:4] == b"\x89PNG"
    items = pd.read_csv(folder / "items.csv")
    with open(folder / items["image"][0], "rb") as f:
        by_image = client.post("/search", files={"image": ("q.png", f, "image/png")}, data={"k": "5"})
    assert by_image.status_code == 200 and len(by_image.json()["results"]) == 5
    assert client.get("/metadata").json()["kind"] == "index" and client.get("/items/999").status_code == 404


@pytest.mark.parametrize("body, field", [({"text": "a", "image": "AAAA"}, "query"), ({}, "query"),
                                         ({"text": "a", "k": 0}, "k"), ({"text": "a", "k": "many"}, "k"),
                                         ({"image": "%%%"}, "image"), ({"text": 5}, "text")])
def test_bad_search_requests(index_client, body, field):
    answer = index_client[1].post("/search", json=body)
    assert answer.status_code == 422 and answer.json()["field"] == field


def test_serving_a_retrieval_model_without_an_index_is_refused(index_client):
    from mmfuse.errors import BundleError

    with pytest.raises(BundleError, match="serve an index"):
        create_app(index_client[0] / "retriever")


def test_no_500_on_random_json(served):
    """A few hundred random JSON bodies: every answer is 200 or 4xx."""
    rng = np.random.default_rng(0)
    values = [None, "", "a", 1, -1e308, 1e9, [], {}, [1, 2], {"a": 1}, "AAAA", True, "\ud800"]
    for _ in range(200):
        row = {k: values[rng.integers(len(values))] for k in ("text", "image", "x", "colour") if rng.random() < 0.7}
        body = {"rows": [row] * int(rng.integers(1, 3)), "explain": bool(rng.random() < 0.5)}
        answer = served[1].post("/predict", content=json.dumps(body).encode(),  # escapes a lone surrogate
                                headers={"content-type": "application/json"})
        assert answer.status_code in (200, 422), (body, answer.text)


def test_image_bytes_round_trip_through_base64_data_urls(served):
    folder, client = served
    test, rows = rows_of(folder, 1)
    buffer = io.BytesIO()
    Image.open(folder / test["image"][0]).save(buffer, "PNG")
    rows[0]["image"] = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    assert client.post("/predict", json={"rows": rows}).json()["predictions"][0]["inputs_used"] == \
        ["image", "tabular", "text"]
