"""Processor state is explicit: constructor params and fitted state (trailing ``_``) are saved separately, restored
through ``__init__``, and the saved keys of every built-in processor are pinned to the bundle format version: a
change of keys without a new ``FORMAT_VERSION`` (and a loader for the old one) fails here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

from mmfuse.core.columns import ColumnInfo
from mmfuse.core.processor import Processor
from mmfuse.io.bundle import FORMAT_VERSION
from mmfuse.registry import PROCESSORS
from tests.test_pretrained import save_tiny_hf_model

SNAPSHOT = Path(__file__).parent / "fixtures" / "processor_state_keys.json"


def fitted_processors(folder: Path) -> dict[str, Processor]:
    """One fitted processor of every built-in kind, on a few generated values."""
    Image.new("RGB", (10, 10), "red").save(folder / "a.png")
    sf.write(folder / "a.wav", np.sin(np.arange(1600) / 5).astype(np.float32), 8000)
    tiny = save_tiny_hf_model(folder / "bert")
    frame = pd.DataFrame({"t": ["calm blue river", "hot red fire"], "i": ["a.png", "a.png"], "a": ["a.wav", "a.wav"],
                          "s": ["[1, 2, 3]", "[4, 5]"], "x": [1.0, 2.0], "c": ["u", "v"]})
    made = {
        "text": PROCESSORS.get("text").for_input([ColumnInfo("t", "text", "")], {"vocab_size": 20}),
        "image": PROCESSORS.get("image").for_input([ColumnInfo("i", "image", "")], {"size": 8}),
        "audio": PROCESSORS.get("audio").for_input([ColumnInfo("a", "audio", "")], {"sample_rate": 8000}),
        "sequence": PROCESSORS.get("sequence").for_input([ColumnInfo("s", "sequence", "")], {}),
        "tabular": PROCESSORS.get("tabular").for_input([ColumnInfo("x", "numeric", ""), ColumnInfo("c", "categorical", "")], {}),
        "ngram_text": PROCESSORS.get("ngram_text").for_input([ColumnInfo("t", "text", "")], {"min_count": 1}),
        "pretrained_text": PROCESSORS.get("pretrained_text").for_input([ColumnInfo("t", "text", "")], {
            "source": str(tiny), "ngrams": {"min_count": 1}}),
        "pretrained_image": PROCESSORS.get("pretrained_image").for_input([ColumnInfo("i", "image", "")],
                                                                         {"source": "efficientnet_lite0"}),
        "set": PROCESSORS.get("set").for_input([ColumnInfo("i", "image", "", {"set": {}})],
                                               {"element": "image", "element_settings": {"size": 8}}),
    }
    for proc in made.values():
        proc.use_cache(str(folder / "cache"))
        proc.fit(proc.input_values(frame), folder)
    return made


@pytest.fixture(scope="module")
def processors(tmp_path_factory) -> dict[str, Processor]:
    pytest.importorskip("efficientnet_lite_pytorch")
    return fitted_processors(tmp_path_factory.mktemp("processors"))


def test_every_built_in_processor_is_covered(processors):
    assert sorted(processors) == PROCESSORS.names()


def test_saved_keys_match_the_format_version(processors):
    keys = {kind: {part: sorted(proc.state_dict()[part]) for part in ("params", "fitted")}
            for kind, proc in processors.items()}
    pinned = json.loads(SNAPSHOT.read_text())
    current = json.dumps({"format_version": FORMAT_VERSION, "keys": keys}, indent=1)
    assert pinned["format_version"] == FORMAT_VERSION, (
        f"FORMAT_VERSION is now {FORMAT_VERSION}: pin the new keys in {SNAPSHOT.name}:\n{current}")
    assert pinned["keys"] == keys, (
        f"a processor's saved state changed: bump mmfuse.io.bundle.FORMAT_VERSION, keep a loader for the old "
        f"format, and pin the new keys in {SNAPSHOT.name}:\n{current}")


def test_state_round_trips_through_init(processors, tmp_path):
    for kind, proc in processors.items():
        state = json.loads(json.dumps(proc.state_dict()))
        assert not [k for k in state["fitted"] if not k.endswith("_")]
        again = Processor.from_state(state)
        assert type(again) is type(proc) and again.state_dict() == state
        assert again.encoder_kwargs() == proc.encoder_kwargs()


def test_unknown_saved_parameters_are_refused(processors):
    from mmfuse import BundleError

    state = processors["text"].state_dict()
    with pytest.raises(BundleError, match="unknown parameters surprise"):
        Processor.from_state({**state, "params": {**state["params"], "surprise": 1}})
