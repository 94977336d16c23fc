"""The bad-input corpus: each case builds one kind of broken input on the fly and asserts its specified outcome
through the command line, run in-process: the exit code, one message line naming the row / column / file, no
traceback, and the row accounting (rows in = rows scored + rows reported left out). One fitted model is shared."""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_table
from corpus import (cli, float_tiff, image_16bit, int32_png, long_stereo_flac, npy_claiming, npy_unparsable_header,
                    png_broken_chunk, png_header_only, truncated_png)
from forge import reseal
from PIL import Image

from mmfuse import Predictor
from mmfuse.errors import BundleError
from mmfuse.io.hashing import sha256_file
from mmfuse.io.images import MAX_PIXELS, load_image
from mmfuse.modalities.audio.processor import AudioProcessor

POLICIES = ("mask", "skip", "error")


def written(path, content: bytes):
    path.write_bytes(content)
    return path


def fifo(path: Path) -> Path:
    if not path.exists():  # the world is shared by the policies' runs
        os.mkfifo(path)
    return path


def link_to_dev_zero(path: Path) -> Path:
    if not path.is_symlink():
        path.symlink_to("/dev/zero")
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A folder with train / test tables (text, image, x, colour, seq -> y) and a model fitted on them."""
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "seq").mkdir()
    tables = {}
    for name, seed, n in (("train", 0, 120), ("test", 2, 20)):
        frame = make_table(folder, n=n, seed=seed).drop(columns="id")
        for i, y in enumerate(frame["y"]):
            np.save(folder / "seq" / f"{seed}_{i}.npy", np.full((5, 2), float(y), dtype=np.float32))
        frame["seq"] = [f"seq/{seed}_{i}.npy" for i in range(n)]
        frame.to_csv(folder / f"{name}.csv", index=False)
        tables[name] = frame
    model = folder / "model"
    Predictor(label="y", preset="fast", max_epochs=2, threads=2, progress=False, verbose=False).fit(
        folder / "train.csv").save(model)
    return folder, model, tables["test"]


def with_bad_cell(world, column: str, value, name: str):
    """The test table with row 3's ``column`` set to ``value``, written as ``name``.csv beside the model."""
    folder, _, test = world
    frame = test.copy()
    frame[column] = frame[column].astype(object)
    frame.loc[3, column] = value
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def evaluate(world, table, policy: str):
    _, model, _ = world
    return cli("evaluate", model, table, "--json", "--on-bad-row", policy)


def assert_policy_outcome(world, table, policy: str, column: str, detail: str, rows: int = 20):
    """Unreadable value in row 3 of ``column``: error -> exit 2 naming row, column and ``detail``; skip -> the row
    is left out and counted; mask -> every row scored, the value reported."""
    outcome = evaluate(world, table, policy)
    if policy == "error":
        assert outcome.code == 2, outcome
        line = outcome.error_line
        assert line.startswith("error: evaluate row 3, column") and repr(column) in line and detail in line, line
        assert "Traceback" not in outcome.err
        return
    assert outcome.code == 0, outcome
    report = json.loads(outcome.out)
    assert report["rows"] == rows == report["rows_scored"] + report["left_out_no_label"] + report["left_out_unreadable"]
    assert report["left_out_unreadable"] == (1 if policy == "skip" else 0)
    assert f"column {column!r}" in outcome.err and "3" in outcome.err and detail in outcome.err, outcome.err


# --- image files ------------------------------------------------------------------------------------------------
IMAGE_CASES = {
    "zero-byte png": (lambda p: written(p, b""), "cannot read image"),
    "truncated png": (truncated_png, "cannot read image"),
    "png with a broken chunk": (png_broken_chunk, "damaged PNG data"),
    "text as png": (lambda p: written(p, b"not an image"), "cannot read image"),
    "decompression bomb (196 Mpx)": (lambda p: png_header_only(p, 14_000, 14_000), "too large"),
    "over the pixel cap (49 Mpx)": (lambda p: png_header_only(p, 7_000, 7_000), "megapixels, above the"),
    "missing file": (lambda p: p.with_name("nowhere.png"), "not found"),
    "a folder": (lambda p: p.parent, "not a regular file (a folder)"),
    "a FIFO": (lambda p: fifo(p), "not a regular file (a FIFO)"),  # opening it would block forever
    "a link to a device": (lambda p: link_to_dev_zero(p), "not a regular file (a device)"),  # read until memory ends
}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("case", IMAGE_CASES)
def test_unreadable_image(world, tmp_path, case, policy):
    make, detail = IMAGE_CASES[case]
    bad = make(world[0] / "img" / f"bad-{case.replace(' ', '_')}.png")
    table = with_bad_cell(world, "image", str(bad), f"img-{policy}")
    assert_policy_outcome(world, table, policy, "image", detail)


def test_pixel_cap_is_read_from_the_header_before_decoding(tmp_path):
    bomb = png_header_only(tmp_path / "bomb.png", 20_000, 20_000)  # 400 Mpx: ~400 MB if decoded
    with pytest.raises(ValueError, match="too large: .*400000000 pixels"):
        load_image(bomb, 32, 1)
    assert MAX_PIXELS < Image.MAX_IMAGE_PIXELS  # well below Pillow's own limit
    Image.new("L", (200, 100)).save(tmp_path / "small.png")
    with pytest.raises(ValueError, match="above the 0.01-megapixel limit"):
        load_image(tmp_path / "small.png", 32, 1, max_pixels=10_000)


@pytest.mark.parametrize("mode, make, expected", [
    ("I;16 (16-bit PNG)", lambda p: image_16bit(p.with_suffix(".png"), 32_768), 128),
    ("I;16 white", lambda p: image_16bit(p.with_suffix(".png"), 65_535), 255),
    ("I (32-bit integer TIFF)", lambda p: int32_png(p.with_suffix(".tif"), 1000), round(1000 / 65535 * 255)),
    ("I holding 8-bit values", lambda p: int32_png(p.with_suffix(".tif"), 200), 200),
    ("F (float TIFF in 0-1)", lambda p: float_tiff(p.with_suffix(".tif"), 0.25), 64),
])
def test_wide_image_modes_are_scaled_not_clipped(tmp_path, mode, make, expected):
    pixels = load_image(make(tmp_path / "wide"), 8, 1)
    assert pixels.shape == (1, 8, 8) and abs(int(pixels.mean()) - expected) <= 1, mode


@pytest.mark.parametrize("mode", ["P", "PA", "CMYK", "RGBA", "LA", "1", "L", "RGB", "YCbCr"])
def test_every_common_pillow_mode_reads(tmp_path, mode):
    image = Image.new("RGB", (12, 12), (200, 30, 30)).convert(mode)
    path = tmp_path / ("x.jpg" if mode in ("CMYK", "YCbCr") else "x.png" if mode != "PA" else "x.png")
    (image.convert("RGBA") if mode == "PA" else image).save(path)
    rgb = load_image(path, 8, 3)
    assert rgb.shape == (3, 8, 8) and rgb.dtype == np.uint8
    if mode not in ("1", "L", "LA"):
        assert rgb[0].mean() > rgb[1].mean() + 60, mode  # still red


def test_large_jpeg_is_decoded_at_reduced_size(tmp_path):
    Image.new("RGB", (4000, 3000), "blue").save(tmp_path / "big.jpg", quality=50)
    with Image.open(tmp_path / "big.jpg") as img:
        img.draft("RGB", (32, 32))
        assert img.size[0] <= 500  # what load_image asks for: 1/8 scale
    assert load_image(tmp_path / "big.jpg", 32, 3)[2].mean() > 200


# --- numbers, categories, text -----------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("value", ["inf", "-inf", "1e999", "twelve"])
def test_non_finite_or_text_number(world, value, policy):
    table = with_bad_cell(world, "x", value, f"x-{policy}")
    assert_policy_outcome(world, table, policy, "x", "not a finite number")


def test_inf_at_predict_gives_real_probabilities(world, tmp_path):
    table = with_bad_cell(world, "x", "inf", "x-predict")
    outcome = cli("predict", world[1], table, "--out", tmp_path / "p.csv")
    assert outcome.code == 0 and "not a finite number" in outcome.err
    frame = pd.read_csv(tmp_path / "p.csv")
    proba = frame[[c for c in frame.columns if c.startswith("proba_")]].to_numpy()
    assert len(frame) == 20 and np.isfinite(proba).all() and np.allclose(proba.sum(1), 1, atol=1e-4)


def test_inf_in_training_numbers_is_imputed_and_reported(world, tmp_path):
    folder = world[0]
    train = pd.read_csv(folder / "train.csv")
    train["x"] = train["x"].astype(object)
    train.loc[[1, 5], "x"] = ["inf", "-inf"]
    train.to_csv(folder / "train-inf.csv", index=False)
    outcome = cli("fit", folder / "train-inf.csv", "--label", "y", "--preset", "fast", "--max-epochs", "1",
                  "--threads", "2", "--out", tmp_path / "m", "--quiet")
    assert outcome.code == 0, outcome
    report = json.loads((tmp_path / "m" / "data_report.json").read_text())
    masked = [r for split in report.values() for r in split["columns"].get("x", {}).get("masked", {}).get("rows", [])]
    assert sorted(masked) == [1, 5]
    processors = json.loads((tmp_path / "m" / "processors.json").read_text())
    assert all(np.isfinite(v) for v in processors["tabular"]["fitted"]["means_"])


def test_huge_number_is_clipped_and_reported(world):
    table = with_bad_cell(world, "x", "1e300", "x-huge")
    outcome = evaluate(world, table, "mask")
    assert outcome.code == 0 and "standard deviations" in outcome.err and json.loads(outcome.out)["rows_scored"] == 20


def test_unseen_category_goes_to_the_unknown_bucket(world):
    table = with_bad_cell(world, "colour", "ultraviolet", "colour-unseen")
    outcome = evaluate(world, table, "mask")
    assert outcome.code == 0 and "unseen categories" in outcome.err


@pytest.mark.parametrize("text", ["x" * 1_000_000, "a\x00b\x00c", "\u202eright-to-left \u05e9\u05dc\u05d5\u05dd",
                                  "", "   "])
def test_odd_text_cells(world, text):
    table = with_bad_cell(world, "text", text, "text-odd")
    outcome = evaluate(world, table, "mask")
    assert outcome.code == 0, outcome
    assert json.loads(outcome.out)["rows_scored"] == 20


def test_all_empty_column_is_masked_in_every_row(world):
    folder, model, test = world
    test.assign(text=np.nan).to_csv(folder / "text-empty.csv", index=False)
    outcome = evaluate(world, folder / "text-empty.csv", "mask")
    assert outcome.code == 0 and "20 empty/missing" in outcome.err


# --- sequence and audio files ------------------------------------------------------------------------------------
SEQUENCE_CASES = {
    "npz renamed npy": (lambda p: np.savez(p.with_suffix(".npz"), a=np.ones(3)) or
                        p.with_suffix(".npz").rename(p) or p, "an .npz archive"),
    "zero-byte npy": (lambda p: written(p, b""), "empty"),
    "pickled object array": (lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True) or p,
                             "not a .npy array"),
    "text as npy": (lambda p: written(p, b"1,2,3"), "not a .npy array"),
    "strings in npy": (lambda p: np.save(p, np.array(["a", "b"])) or p, "not numbers"),
    "nan in npy": (lambda p: np.save(p, np.array([[np.nan, 1.0]] * 5)) or p, "NaN or infinite"),
    "header claiming 7 TiB": (lambda p: npy_claiming(p, (1_000_000, 1_000_000)), "above the 2 GiB limit"),
    "header claiming more than the file": (lambda p: npy_claiming(p, (5, 2), b"\0" * 40), "truncated"),
    "header numpy cannot tokenize": (npy_unparsable_header, "not a .npy array"),
    "a FIFO": (lambda p: fifo(p), "not a regular file (a FIFO)"),
}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("case", SEQUENCE_CASES)
def test_unreadable_sequence_file(world, case, policy):
    make, detail = SEQUENCE_CASES[case]
    bad = make(world[0] / "seq" / f"bad-{case.replace(' ', '_')}.npy")
    table = with_bad_cell(world, "seq", str(bad), f"seq-{policy}")
    assert_policy_outcome(world, table, policy, "seq", detail)


SEQUENCE_CELLS = {
    "unterminated list": ("[1, 2", "not valid JSON"),
    "unterminated quote": ('["1, 2]', "not valid JSON"),
    "a JSON object": ('{"a": 1}', "a JSON object"),
    "a list of objects": ('[{"a": 1}]', "not a list of numbers"),
    "nested 5,000 levels": ("[" * 5000 + "]" * 5000, "nested 5000 levels deep"),
    "ragged rows": ("[[1, 2], [3]]", "equal-length lists"),
}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("case", SEQUENCE_CELLS)
def test_unreadable_sequence_cell(world, case, policy):
    value, detail = SEQUENCE_CELLS[case]
    table = with_bad_cell(world, "seq", value, f"seqcell-{policy}")
    assert_policy_outcome(world, table, policy, "seq", detail)


def test_long_audio_is_read_only_as_far_as_it_is_kept(tmp_path):
    long_stereo_flac(tmp_path / "long.flac", seconds=600)
    processor = AudioProcessor("audio", sample_rate=8000, max_seconds=1.0)
    processor._setup()
    out = processor.transform(pd.Series(["long.flac"]), tmp_path)
    assert bool(out.present[0]) and out.problems[0].detail == "600.00 s clip cropped to 1.0 s"
    from mmfuse.modalities.audio.features import load_audio

    wave, seconds = load_audio(tmp_path / "long.flac", 8000, max_seconds=1.0)
    assert seconds == pytest.approx(600) and len(wave) == 8000  # 1 s decoded, not 600


# --- tables ------------------------------------------------------------------------------------------------------
def test_non_utf8_csv_needs_its_encoding(world, tmp_path):
    folder, model, test = world
    frame = test.copy()
    frame.loc[0, "text"] = "caf\u00e9 cr\u00e8me"
    path = folder / "latin1.csv"
    frame.to_csv(path, index=False, encoding="latin-1")
    refused = evaluate(world, path, "mask")
    assert refused.code == 2 and "--encoding" in refused.error_line and "latin1.csv" in refused.error_line
    read = cli("evaluate", model, path, "--json", "--encoding", "latin-1")
    assert read.code == 0 and json.loads(read.out)["rows_scored"] == 20
    unknown = cli("evaluate", model, path, "--encoding", "klingon")
    assert unknown.code == 2 and "unknown text encoding" in unknown.error_line


def test_bom_csv_reads_its_first_column(world):
    folder, _, test = world
    test[["y", "text", "image", "x", "colour", "seq"]].to_csv(folder / "bom.csv", index=False, encoding="utf-8-sig")
    outcome = evaluate(world, folder / "bom.csv", "mask")
    assert outcome.code == 0 and json.loads(outcome.out)["rows_scored"] == 20


@pytest.mark.parametrize("content, detail", [
    ("a,b,y\n1,2,0\n1,2,3,1\n", "line 3: 4 fields where the header has 3"),
    ("a,b,y\n1,2,0\n1,2\n", "line 3: 2 fields where the header has 3"),
    ("a,b,a\n1,2,3\n", "repeated column names: a"),
    ("", "is empty"),
    ("a,b,y\n", "has no rows"),
    ('a,b,y\n"1,2,0\n', "line"),
])
def test_malformed_csv_is_refused_with_the_line(world, tmp_path, content, detail):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    outcome = evaluate(world, path, "mask")
    assert outcome.code == 2 and detail in outcome.error_line and "bad.csv" in outcome.error_line, outcome


def test_unknown_file_type(world, tmp_path):
    (tmp_path / "t.xlsx").write_bytes(b"PK")
    assert "use .csv, .tsv, .parquet or .jsonl" in evaluate(world, tmp_path / "t.xlsx", "mask").error_line


def test_jsonl_with_inconsistent_keys_reads_missing_keys_as_empty_cells(world):
    folder, _, test = world
    rows = test.to_dict("records")
    del rows[2]["text"], rows[4]["x"], rows[6]["y"]
    (folder / "ragged.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    outcome = evaluate(world, folder / "ragged.jsonl", "mask")
    report = json.loads(outcome.out)
    assert outcome.code == 0 and report["rows"] == 20 and report["rows_scored"] == 19 and report["left_out_no_label"] == 1
    assert "column 'text': 1 empty" in outcome.err and "column 'x': 1 empty" in outcome.err


def test_lone_surrogates_read_as_replacement_characters_and_are_said(world, tmp_path, caplog, monkeypatch):
    """A JSON escape of half a surrogate pair (in text and in a category) and such a string in a DataFrame: read as
    U+FFFD with a warning naming the line, or the row and column; predictions are written and every row scored."""
    folder, model, test = world
    lines = [json.dumps(r) for r in test.to_dict("records")]
    lines[4] = lines[4].replace('"text": "', '"text": "\\ud800 half \\\\ud800 ')  # the second is a literal backslash
    lines[6] = lines[6].replace('"colour": "', '"colour": "\\udfff')
    (folder / "halves.jsonl").write_text("\n".join(lines))
    outcome = evaluate(world, folder / "halves.jsonl", "mask")
    assert outcome.code == 0 and json.loads(outcome.out)["rows_scored"] == 20
    assert "halves.jsonl: 2 lone surrogate escape(s) (first on line 5)" in outcome.err
    outcome = cli("predict", model, folder / "halves.jsonl", "--out", tmp_path / "p.csv")
    assert outcome.code == 0 and len(pd.read_csv(tmp_path / "p.csv")) == 20
    frame = test.astype({"text": object})
    frame.loc[3, "text"] = "tail \ud83d"
    monkeypatch.chdir(folder)  # a DataFrame's file paths are relative to the working directory
    monkeypatch.setattr(logging.getLogger("mmfuse"), "propagate", True)  # the in-process CLI turned it off
    predicted = Predictor.load(model).predict(frame)
    assert len(predicted) == 20 and "1 cell(s) held lone surrogates (first: row 3, column 'text')" in caplog.text


def test_parquet_table(world):
    folder, _, test = world
    test.to_parquet(folder / "test.parquet")
    assert json.loads(evaluate(world, folder / "test.parquet", "mask").out)["rows_scored"] == 20


def test_label_missing_in_some_rows_is_counted(world):
    table = with_bad_cell(world, "y", np.nan, "label-some")
    report = json.loads(evaluate(world, table, "mask").out)
    assert (report["rows"], report["rows_scored"], report["left_out_no_label"]) == (20, 19, 1)


def test_label_column_absent_or_unseen_at_evaluate(world):
    folder, _, test = world
    test.drop(columns="y").to_csv(folder / "nolabel.csv", index=False)
    assert "label column 'y' not found" in evaluate(world, folder / "nolabel.csv", "mask").error_line
    table = with_bad_cell(world, "y", 7, "label-unseen")
    line = evaluate(world, table, "mask").error_line
    assert "row 3" in line and "not seen in training" in line


def test_columns_absent_or_extra_at_predict(world, tmp_path):
    folder, model, test = world
    test.drop(columns=["text"]).assign(extra="zzz").to_csv(folder / "cols.csv", index=False)
    outcome = cli("predict", model, folder / "cols.csv", "--out", tmp_path / "p.csv")
    assert outcome.code == 0 and "'text' not in the table" in outcome.err
    assert pd.read_csv(tmp_path / "p.csv")["inputs_used"].str.contains("text").sum() == 0


def test_predictions_go_to_a_new_folder_whole_or_not_at_all(world, tmp_path, monkeypatch):
    folder, model, test = world
    out = tmp_path / "no" / "such" / "dir" / "p.csv"
    assert cli("predict", model, folder / "test.csv", "--out", out).code == 0 and len(pd.read_csv(out)) == len(test)
    (tmp_path / "a-file").write_text("x")
    outcome = cli("predict", model, folder / "test.csv", "--out", tmp_path / "a-file" / "p.csv")
    assert outcome.code == 2 and outcome.error_line.startswith("error: cannot write") and "a-file" in outcome.error_line

    def fails_midway(self, path, **kwargs):
        Path(path).write_text("row,predic")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", fails_midway)
    outcome = cli("predict", model, folder / "test.csv", "--out", out)
    assert outcome.code == 2 and "No space left on device" in outcome.error_line
    assert len(pd.read_csv(out)) == len(test) and [p.name for p in out.parent.iterdir()] == ["p.csv"]


def test_single_class_label_is_refused_at_fit(world, tmp_path):
    folder = world[0]
    pd.read_csv(folder / "train.csv").assign(y=1).to_csv(folder / "one-class.csv", index=False)
    for task in ("auto", "multiclass"):
        outcome = cli("fit", folder / "one-class.csv", "--label", "y", "--task", task, "--out", tmp_path / task)
        assert outcome.code == 2 and "only one" in outcome.error_line


# --- command-line misuse -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("flag, value", [("--max-epochs", "-1"), ("--lr", "-1"), ("--batch-size", "0"),
                                         ("--time-limit", "0"), ("--threads", "0"), ("--modality-dropout", "2")])
def test_bad_numbers_name_the_flag(world, tmp_path, flag, value):
    outcome = cli("fit", world[0] / "train.csv", "--label", "y", "--out", tmp_path / "m", flag, value)
    assert outcome.code == 2 and f"'{flag}'" in outcome.out and "preset" not in outcome.out


def test_out_holding_a_model_needs_overwrite(world, tmp_path):
    folder, model, _ = world
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    before = sha256_file(copy / "model.safetensors")
    args = ("fit", folder / "train.csv", "--label", "y", "--preset", "fast", "--max-epochs", "1", "--quiet",
            "--out", copy)
    refused = cli(*args)
    assert refused.code == 2 and "--overwrite" in refused.out and sha256_file(copy / "model.safetensors") == before
    assert cli(*args, "--overwrite").code == 0
    assert sha256_file(copy / "model.safetensors") != before and not (tmp_path / "model.partial").exists()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    other = cli("fit", folder / "train.csv", "--label", "y", "--out", tmp_path / "notes", "--overwrite")
    assert other.code == 2 and "not an mmfuse model folder" in other.out
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"


# --- damaged model folders ---------------------------------------------------------------------------------------
def edit_processors(folder, change):
    state = json.loads((folder / "processors.json").read_text())
    change(state)
    (folder / "processors.json").write_text(json.dumps(state))


DAMAGE = {
    "processors.json edited": (lambda f: edit_processors(f, lambda s: s["image"]["fitted"].update(mean_=[0.9] * 3)),
                               False, "processors.json does not match the checksum"),
    "optional file edited": (lambda f: (f / "metrics.json").write_text("{}"), False, "metrics.json does not match"),
    "manifest missing": (lambda f: (f / "manifest.json").unlink(), False, "manifest.json is missing"),
    "processors.json not JSON": (lambda f: (f / "processors.json").write_text("{oops"), True,
                                 "processors.json is not readable JSON"),
    "unknown processor kind": (lambda f: edit_processors(f, lambda s: s["image"].update(kind="hologram")), True,
                               "unknown processor 'hologram'"),
    "processor state missing a field": (lambda f: edit_processors(f, lambda s: s["image"].pop("fitted")), True,
                                        "does not describe a model"),
    "weights truncated": (lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:100]),
                          True, "model.safetensors is not a readable safetensors file"),
    "pickle as weights": (lambda f: (f / "model.safetensors").write_bytes(pickle.dumps({"w": [1, 2]})), True,
                          "not a readable safetensors file"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_damaged_model_folder_is_refused_in_one_line(world, tmp_path, case):
    damage, resealed, detail = DAMAGE[case]
    copy = tmp_path / "model"
    shutil.copytree(world[1], copy)
    damage(copy)
    if resealed:
        reseal(copy)
    predicted = cli("predict", copy, world[0] / "test.csv", "--out", tmp_path / "p.csv")
    assert predicted.code == 2 and predicted.error_line.startswith("error: model folder is damaged") \
        and detail in predicted.error_line, (case, predicted)
    about = cli("info", copy)  # info verifies the checksums, and reads config.json and metrics.json alone
    assert about.code == 0 if resealed else about.error_line == predicted.error_line, (case, about)


def test_folder_mixing_two_fits_is_refused(world, tmp_path):
    folder, model, _ = world
    other = Predictor(label="y", preset="fast", max_epochs=1, seed=5, threads=2, progress=False, verbose=False).fit(
        folder / "train.csv").save(tmp_path / "other")
    mixed = tmp_path / "mixed"
    shutil.copytree(model, mixed)
    shutil.copy(other / "processors.json", mixed / "processors.json")
    assert "does not match the checksum" in cli("info", mixed).error_line


def test_optional_files_may_be_absent(world, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(world[1], copy)
    for name in ("metrics.json", "data_report.json", "training_log.csv", "learning_curves.png"):
        (copy / name).unlink()
    info = cli("info", copy)
    assert info.code == 0 and "metrics.json is not in this folder" in info.out
    assert cli("predict", copy, world[0] / "test.csv", "--out", tmp_path / "p.csv").code == 0


def test_format_2_bundle_still_loads(world, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(world[1], copy)
    (copy / "manifest.json").unlink()
    config = json.loads((copy / "config.json").read_text())
    config["format_version"] = 2  # format 2 sealed the weights alone, in config.json
    config["weights_sha256"] = sha256_file(copy / "model.safetensors")
    (copy / "config.json").write_text(json.dumps(config))
    assert cli("predict", copy, world[0] / "test.csv", "--out", tmp_path / "p.csv").code == 0


def test_a_path_outside_the_tables_folder_is_read(world, tmp_path):
    """The user's own machine: an absolute path anywhere is read (the server never reads paths; see serving)."""
    elsewhere = tmp_path / "elsewhere.png"
    shutil.copy(world[0] / "img" / "2_3.png", elsewhere)
    table = with_bad_cell(world, "image", str(elsewhere), "outside")
    outcome = cli("predict", world[1], table, "--out", tmp_path / "p.csv")
    assert outcome.code == 0 and outcome.err == ""
    assert pd.read_csv(tmp_path / "p.csv")["inputs_used"].str.contains("image").all()


def test_a_save_that_fails_midway_leaves_the_old_model_whole(world, tmp_path, monkeypatch):
    copy = tmp_path / "model"
    shutil.copytree(world[1], copy)
    before = {f.name: sha256_file(f) for f in copy.iterdir()}
    predictor = Predictor.load(copy, verbose=False)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("mmfuse.estimators.folder.plot_learning_curves", crash)
    with pytest.raises(BundleError, match=r"could not save the model to .* \(disk full\): what was there is unchanged"):
        predictor.save(copy)
    assert {f.name: sha256_file(f) for f in copy.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging folder left behind
    assert Predictor.load(copy, verbose=False).predict(world[0] / "test.csv").size == 20


def test_hostile_uploads_to_the_server_are_masked_or_refused_without_a_traceback(world, tmp_path, caplog,
                                                                                 monkeypatch):
    """The server side of the corpus: a PNG with a broken chunk is masked and said (200); a sequence upload whose
    header claims 7 TiB or cannot be parsed, a sequence cell nested 5,000 levels deep and a lone surrogate get a 422
    naming the field (a header is checked at the door, as an image's pixel claim is); nothing is allocated from the
    claim and no log record carries a traceback."""
    import base64

    from fastapi.testclient import TestClient

    from mmfuse.serve import ServeLimits, create_app

    folder, model, test = world
    client = TestClient(create_app(model, ServeLimits(max_body_bytes=2_000_000, max_rows=8)))
    row = {"text": test.loc[0, "text"], "colour": test.loc[0, "colour"], "x": float(test.loc[0, "x"])}
    encoded = {name: base64.b64encode(make(tmp_path / name).read_bytes()).decode() for name, make in (
        ("huge.npy", lambda p: npy_claiming(p, (1_000_000, 1_000_000))), ("broken.png", png_broken_chunk),
        ("unparsable.npy", npy_unparsable_header))}
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(logging.getLogger("mmfuse"), "propagate", True)  # the in-process CLI turned it off
    answer = client.post("/predict", json={"rows": [row | {"image": encoded["broken.png"]}]})
    assert answer.status_code == 200, answer.text
    (masked,) = answer.json()["predictions"]
    assert "image" not in masked["inputs_used"] and any("damaged PNG" in note for note in masked["notes"])
    for upload, detail in (("huge.npy", "above the 2 GiB limit"), ("unparsable.npy", "not a .npy array")):  # was a 500
        answer = client.post("/predict", json={"rows": [row | {"seq": encoded[upload]}]})
        assert answer.status_code == 422 and answer.json()["field"] == "rows[0].seq", answer.text
        assert detail in answer.json()["error"]
    for body, field in ((json.dumps({"rows": [row | {"seq": "[" * 5000 + "]" * 5000}]}).encode(), "rows[0].seq"),
                        (b'{"rows": [{"text": "half \\ud800"}]}', "rows[0].text")):
        answer = client.post("/predict", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 422 and answer.json()["field"] == field, answer.text
    assert not [r for r in caplog.records if r.exc_info], "a log record carries a traceback"


# --- sizes and counts past the documented limits ------------------------------------------------------------------
@pytest.mark.parametrize("policy", POLICIES)
def test_a_text_cell_above_the_limit_is_unreadable(world, policy):
    table = with_bad_cell(world, "text", "word " * 200_001, "text-huge")  # 1,000,005 characters
    assert_policy_outcome(world, table, policy, "text", "above the limit of 1,000,000")


def test_a_table_with_too_many_columns_is_refused_in_one_line(tmp_path):
    (tmp_path / "wide.csv").write_text(",".join(f"c{i}" for i in range(10_001)) + ",y\n" + "1," * 10_001 + "0\n")
    outcome = cli("fit", tmp_path / "wide.csv", "--label", "y", "--out", tmp_path / "model")
    assert outcome.code == 2 and "10,002 columns, above the limit of 10,000" in outcome.error_line


# --- forged state: JSON files and cache entries that verify but are not what they claim --------------------------
def test_a_forged_feature_cache_entry_is_a_miss():
    import hashlib
    import struct

    from mmfuse.io.cache import MAGIC, FeatureCache

    def forged(key: str, header: bytes, values: bytes) -> bytes:  # a valid digest over a body that lies
        body = struct.pack("<I", len(header)) + header + values
        return MAGIC + body + hashlib.sha256(key.encode() + body).digest()

    cache = FeatureCache(Path(os.environ.get("TMPDIR", "/tmp")) / f"forged-cache-{os.getpid()}", {"backbone": "x"})
    cases = {"a header that is not JSON": (b"{not json", np.zeros(3, np.float32).tobytes()),
             "a header nested 10,000 deep": (b"[" * 10_000 + b"]" * 10_000, b""),
             "fewer values than its shape": (b'{"shape": [4]}', np.zeros(3, np.float32).tobytes()),
             "a negative shape": (b'{"shape": [-1]}', b""),
             "NaN values": (b'{"shape": [3]}', np.array([0, np.nan, 1], np.float32).tobytes())}
    for k, (header, values) in enumerate(cases.values()):
        key = f"{k:064d}"
        cache.put(key, np.zeros(3, np.float32))
        cache._path(key).write_bytes(forged(key, header, values))
        assert cache.get(key) is None
    assert cache.rejected == len(cases) and cache.hits == 0
    shutil.rmtree(cache.folder.parent)


def test_deep_json_in_a_runs_saved_state_is_unreadable_not_a_crash(tmp_path):
    from mmfuse.io.checkpoint import load_checkpoint, load_member, save_checkpoint, save_member
    from mmfuse.io.samples import SampleCache

    deep = "[" * 100_000 + "]" * 100_000
    save_checkpoint(tmp_path / "ck", 1, {"w": torch.zeros(2)}, {"history": []})
    (tmp_path / "ck" / "epoch-0001" / "state.json").write_text(deep)
    assert load_checkpoint(tmp_path / "ck") is None
    save_member(tmp_path / "ck", "lightgbm", {"a": np.zeros(2)}, {"row": {}})
    (tmp_path / "ck" / "members" / "lightgbm" / "state.json").write_text(deep)
    assert load_member(tmp_path / "ck", "lightgbm") is None
    cache = SampleCache(tmp_path / "samples")
    (tmp_path / "samples" / "entry").mkdir(parents=True)
    (tmp_path / "samples" / "entry" / "check.json").write_text(deep)
    assert cache.find("entry") is None and "nested 100000 levels deep" in cache.failed
