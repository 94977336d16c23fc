"""The emoji dataset builder, on a tiny package laid out like the npm one."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmfuse.datasets import emoji
from mmfuse.errors import DataError


def fake_package(folder, n_per_category=10):
    images = folder / "img" / "google" / "64"
    images.mkdir(parents=True)
    entries = []
    for c, category in enumerate(["Flags", "Food & Drink", "Symbols"]):
        for i in range(n_per_category):
            name = f"{c:02x}{i:02x}.png"
            Image.fromarray(np.full((64, 64, 4), 40 * c, dtype=np.uint8), "RGBA").save(images / name)
            entries.append({"name": f"THING {c} {i}", "image": name, "category": category, "has_img_google": True})
    (folder / "emoji.json").write_text(json.dumps(entries))


def test_export_splits_are_disjoint_stratified_and_readable(tmp_path):
    fake_package(tmp_path / "pkg")
    paths = emoji.export(tmp_path / "out", source=tmp_path / "pkg")
    frames = {k: pd.read_csv(p) for k, p in paths.items()}
    assert sum(len(f) for f in frames.values()) == 30
    images = [set(f["image"]) for f in frames.values()]
    assert not (images[0] & images[1]) and not (images[0] & images[2]) and not (images[1] & images[2])
    assert set(frames["test"]["category"]) == {"Flags", "Food & Drink", "Symbols"}
    assert all((tmp_path / "out" / p).is_file() for p in frames["train"]["image"])
    assert frames["train"]["name"].str.islower().all()
    again = emoji.export(tmp_path / "out2", source=tmp_path / "pkg")
    assert pd.read_csv(again["test"]).equals(frames["test"])


def test_missing_source_gives_the_fetch_command(tmp_path):
    with pytest.raises(DataError, match="npm pack emoji-datasource-google@16.0.0"):
        emoji.find_source(tmp_path)
