"""The web page end to end in a real headless browser: Debian's Chromium driven by Playwright, against ``mmfuse
serve``'s app on 127.0.0.1. A missing browser fails the test (``make test`` installs it), it never skips."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import uvicorn
from test_serve import index_client, served  # noqa: F401  (the shared model and index fixtures)
from test_sets import set_model  # noqa: F401  (a model whose column holds sets of images)

from mmfuse.serve import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # no connections beyond loopback


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The app on 127.0.0.1:PORT in a background thread, for the duration of a test."""

    def __init__(self, path: Path):
        self.port = free_port()
        config = uvicorn.Config(create_app(path), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started, "the server did not start"
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


def test_fill_the_form_upload_an_image_and_read_the_prediction(served, browser, tmp_path):  # noqa: F811
    folder, client = served
    test = pd.read_csv(folder / "test.csv").head(1)
    row = {"text": test["text"][0], "image": base64.b64encode((folder / test["image"][0]).read_bytes()).decode(),
           "x": float(test["x"][0]), "colour": test["colour"][0]}
    expected = client.post("/predict", json={"rows": [row]}).json()["predictions"][0]
    with Server(folder / "model") as url:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#f-text")
        page.fill("#f-text", row["text"])
        page.fill("#f-x", str(row["x"]))
        page.select_option("#f-colour", row["colour"])
        page.set_input_files("#f-image", str(folder / test["image"][0]))
        page.wait_for_selector("img.preview:not([hidden])")
        page.click("#submit")
        page.wait_for_selector("#answer:not([hidden])")
        assert page.inner_text("#prediction") == str(expected["prediction"])
        assert page.inner_text("#used") == "inputs used: image, tabular, text"
        bars = page.inner_text("#bars")
        assert f"{max(expected['probabilities'].values()):.3f}" in bars
        contributions = page.inner_text("#contributions")
        assert all(name in contributions for name in ("image", "tabular", "text"))
        assert "Shapley value of the probability of" in page.inner_text("#contrib-what")
        page.screenshot(path=str(tmp_path / "prediction.png"), full_page=True)
        page.close()
    assert (tmp_path / "prediction.png").read_bytes()[:4] == b"\x89PNG"


def test_a_bad_upload_shows_the_servers_message(served, browser, tmp_path):  # noqa: F811
    folder, _ = served
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with Server(folder / "model") as url:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#f-image")
        page.fill("#f-text", "calm blue river")
        page.set_input_files("#f-image", str(tmp_path / "broken.png"))
        page.click("#submit")
        page.wait_for_selector("#answer:not([hidden])")
        assert "image: masked" in page.inner_text("#notes")
        assert page.inner_text("#used") == "inputs used: tabular, text"
        page.close()


def test_search_page_shows_thumbnails(index_client, browser, tmp_path):  # noqa: F811
    folder, _ = index_client
    with Server(folder / "index") as url:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#f-text")
        page.fill("#f-text", "a red block at the top")
        page.fill("#f-k", "3")
        page.click("#submit")
        page.wait_for_selector("#results:not([hidden]) #hits li img")
        page.wait_for_function("document.querySelectorAll('#hits img').length === 3 && "
                               "[...document.querySelectorAll('#hits img')].every(i => i.complete && i.naturalWidth > 0)")
        first = page.inner_text("#hits li span")  # the item's own columns, not its file name
        assert first.startswith("1. caption: a ") and " · colour: " in first and ".png" not in first
        page.screenshot(path=str(tmp_path / "search.png"), full_page=True)
        page.close()


def test_a_plugin_modality_is_served_and_drawn_from_its_registration(browser, tmp_path):
    """The colour plugin (tests/plugins/colour.py): /predict takes its inline cells; the page draws its text field
    from the registration, and the categorical column as a list."""
    from fastapi.testclient import TestClient
    from test_plugins import colour_table, unregister_colour_plugin

    from mmfuse import Predictor
    from mmfuse.plugins import load_plugins

    load_plugins(["plugins.colour"])
    try:
        Predictor(label="y", preset="fast", max_epochs=20, lr=0.01, threads=2, progress=False, verbose=False).fit(
            colour_table(tmp_path, 300, 0)).save(tmp_path / "model")
        client = TestClient(create_app(tmp_path / "model"))
        field = next(c for c in client.get("/metadata").json()["columns"] if c["name"] == "colour")
        assert field == {"name": "colour", "modality": "colour", "encoder": "colour_mlp", "widget": "text",
                         "file": False, "accept": "", "hint": "#ff8800", "set": False}
        answers = client.post("/predict", json={"rows": [{"colour": "#ff1010", "word": "epsilon"},
                                                         {"colour": "#101010", "word": "epsilon"}]})
        assert answers.status_code == 200, answers.text
        red, dark = answers.json()["predictions"]
        assert red["inputs_used"] == ["colour", "tabular"] and red["prediction"] == 1 and dark["prediction"] == 0
        with Server(tmp_path / "model") as url:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("#f-colour")
            assert page.get_attribute("#f-colour", "placeholder") == "#ff8800"
            page.fill("#f-colour", "#ff1010")
            page.select_option("#f-word", "epsilon")
            page.click("#submit")
            page.wait_for_selector("#answer:not([hidden])")
            assert page.inner_text("#prediction") == "1"
            assert page.inner_text("#used") == "inputs used: colour, tabular"
            page.close()
    finally:
        unregister_colour_plugin()


def test_two_images_uploaded_into_one_set_field(set_model, browser):  # noqa: F811
    folder, client = set_model
    paths = json.loads(pd.read_csv(folder / "test.csv")["photos"][0])[:2]
    row = {"photos": [base64.b64encode((folder / p).read_bytes()).decode() for p in paths]}
    expected = client.post("/predict", json={"rows": [row]}).json()["predictions"][0]
    with Server(folder / "model") as url:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#f-photos")
        assert page.get_attribute("#f-photos", "multiple") is not None
        page.set_input_files("#f-photos", [str(folder / p) for p in paths])
        page.click("#submit")
        page.wait_for_selector("#answer:not([hidden])")
        assert page.inner_text("#prediction") == str(expected["prediction"])
        assert f"{max(expected['probabilities'].values()):.3f}" in page.inner_text("#bars")
        page.close()
