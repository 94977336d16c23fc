"""Property-based fuzzing (hypothesis): random tables and random cells never raise anything but mmfuse's own errors,
and no processor ever produces a NaN or infinite tensor. Examples are capped to keep the suite fast."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mmfuse.core.columns import ColumnInfo
from mmfuse.data.detect import detect_columns
from mmfuse.data.table import read_table
from mmfuse.errors import MMFuseError
from mmfuse.registry import PROCESSORS

from corpus import npy_claiming, png_broken_chunk

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
FOLDER = Path(tempfile.mkdtemp(prefix="mmfuse-fuzz-"))

text_cells = st.one_of(st.none(), st.text(max_size=60), st.floats(allow_nan=True, allow_infinity=True),
                       st.integers(), st.sampled_from(["", " ", "\x00", "\u202e", "inf", "-inf", "nan", "[1, 2]",
                                                       "[[1, 2], [3]]", "[]", "img.png", "../../etc/passwd",
                                                       "\ud800", "a\udfffb"]))  # lone surrogates


def finite(tensor: torch.Tensor) -> bool:
    return not tensor.is_floating_point() or bool(torch.isfinite(tensor).all())


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_read_table_on_random_bytes(content):
    for suffix in (".csv", ".tsv", ".jsonl"):
        path = FOLDER / f"random{suffix}"
        path.write_bytes(content)
        try:
            table = read_table(path, "fuzz")
        except MMFuseError:
            continue
        assert len(table.frame) > 0 and not table.frame.columns.duplicated().any()


@FUZZ
@given(st.lists(st.tuples(text_cells, text_cells, st.sampled_from([0, 1, "a", None])), min_size=1, max_size=12))
def test_detection_on_random_cells(rows):
    frame = read_table(pd.DataFrame(rows, columns=["a", "b", "y"], dtype=object), "fuzz").frame
    try:
        columns = detect_columns(frame, "y", FOLDER)
    except MMFuseError:
        return
    assert {c.name for c in columns} == {"a", "b"}


def _random_files() -> list[str]:
    """A few files of every kind a cell may name: real ones and broken ones."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (9, 7, 3), dtype=np.uint8)).save(FOLDER / "ok.png")
    Image.fromarray(np.full((5, 5), 40_000, dtype=np.uint16)).save(FOLDER / "wide.png")
    np.save(FOLDER / "ok.npy", rng.normal(size=(6, 3)).astype(np.float32))
    np.save(FOLDER / "big.npy", np.full((4, 3), 1e38, dtype=np.float32))
    import soundfile as sf

    sf.write(str(FOLDER / "ok.wav"), rng.normal(0, 0.1, 4000).astype(np.float32), 8000)
    (FOLDER / "junk.bin").write_bytes(rng.bytes(50))
    (FOLDER / "empty.png").write_bytes(b"")
    npy_claiming(FOLDER / "huge.npy", (1_000_000, 1_000_000))
    png_broken_chunk(FOLDER / "broken.png")
    return ["ok.png", "wide.png", "ok.npy", "big.npy", "ok.wav", "junk.bin", "empty.png", "missing.png", ".",
            "huge.npy", "broken.png"]


FILES = _random_files()
hostile_cells = st.one_of(st.integers(1, 3000).map(lambda depth: "[" * depth + "1" + "]" * depth),
                          st.sampled_from(['{"a": 1}', '[{"a": 1}]', '["1, 2]', "[1, 2",
                                           "[1e999]", "[[1, 2], [3]]", "[" + "1," * 5000 + "1]"]),
                          st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
cells = st.one_of(text_cells, st.sampled_from(FILES), st.lists(st.floats(allow_nan=True, allow_infinity=True),
                                                               max_size=5).map(str), hostile_cells)
MODALITY_OF = {"text": "text", "ngram_text": "text", "image": "image", "audio": "audio", "sequence": "sequence",
               "tabular": "numeric", "pretrained_text": "text", "pretrained_image": "image"}
SETTINGS = {"text": {}, "ngram_text": {"chars": [2, 3]}, "image": {"size": 8}, "audio": {"sample_rate": 8000},
            "sequence": {}, "tabular": {}, "pretrained_text": {"source": "minilm", "max_length": 16, "ngrams": {}},
            "pretrained_image": {"source": "efficientnet_lite0", "image_size": 32}}
TRAINING = {"text": ["a calm river", "hot red fire"], "ngram_text": ["a calm river", "a calm fire"],
            "image": ["ok.png", "wide.png"], "audio": ["ok.wav", "ok.wav"], "sequence": ["ok.npy", "[[1, 2, 3]]"],
            "tabular": [1.5, 2.5], "pretrained_text": ["a calm river", "hot red fire"],
            "pretrained_image": ["ok.png", "ok.png"]}


def fitted(kind: str):
    column = ColumnInfo("c", MODALITY_OF[kind], "fuzz")
    if kind == "tabular":
        proc = PROCESSORS.get(kind).for_input([column, ColumnInfo("k", "categorical", "fuzz")], {})
        return proc.fit(pd.DataFrame({"c": TRAINING[kind], "k": ["x", "y"]}), FOLDER)
    proc = PROCESSORS.get(kind).for_input([column], SETTINGS[kind])
    if hasattr(proc, "use_cache"):
        proc.use_cache(FOLDER / "cache")
    return proc.fit(pd.Series(TRAINING[kind], name="c"), FOLDER)


@pytest.mark.parametrize("kind", sorted(MODALITY_OF))
def test_processor_transform_on_random_cells(kind):
    proc = fitted(kind)

    @settings(max_examples=10 if kind.startswith("pretrained") else 30, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(cells, min_size=1, max_size=6))
    def check(values):
        frame = pd.DataFrame({"c": pd.Series(values, dtype=object), "k": pd.Series(values, dtype=object)})
        frame = read_table(frame, "fuzz").frame  # as every table reaches the processors
        try:
            out = proc.transform(proc.input_values(frame), FOLDER)
        except MMFuseError:
            return
        assert len(out.values) == len(values) and finite(out.values), (kind, values)
        batch = proc.prepare_batch(out.values, train=True)
        assert finite(batch), (kind, values)

    check()
