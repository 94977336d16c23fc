"""The emoji table: 1,911 Google emoji (64 px PNG) with their names, labelled by category (10 classes).

Source: the npm package ``emoji-datasource-google@16.0.0`` (MIT / Apache-2.0), fetched from the npm registry by
``make data`` (``npm pack``) and unpacked under ``data/npm/emoji-datasource-google``. ``export`` writes
``train.csv`` / ``valid.csv`` / ``test.csv`` (stratified 70/15/15, fixed seed) and the images they point to.

Columns: ``image`` (relative PNG path), ``name`` (e.g. "grinning face with smiling eyes"), ``category`` (label).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd

from ..data.table import split_rows
from ..errors import DataError

PACKAGE = "emoji-datasource-google@16.0.0"
DEFAULT_SOURCE = Path("data/npm/emoji-datasource-google")
FETCH_HINT = (f"mkdir -p {DEFAULT_SOURCE} && npm pack {PACKAGE} --pack-destination data/npm && "
              f"tar xzf data/npm/emoji-datasource-google-16.0.0.tgz -C {DEFAULT_SOURCE} --strip-components=1  "
              "(or run: make data)")


def find_source(source: str | Path | None = None) -> Path:
    """The unpacked npm package folder (holding emoji.json and img/google/64/)."""
    folder = Path(source or os.environ.get("MMFUSE_EMOJI_SOURCE", DEFAULT_SOURCE))
    if not (folder / "emoji.json").is_file() or not (folder / "img" / "google" / "64").is_dir():
        raise DataError(f"emoji data not found in {folder}; fetch it with: {FETCH_HINT}")
    return folder


def load_frame(source: str | Path | None = None) -> tuple[pd.DataFrame, Path]:
    """All emoji as a frame with absolute image paths, and the package folder."""
    folder = find_source(source)
    images = folder / "img" / "google" / "64"
    rows = [{"image": str(images / e["image"]), "name": e["name"].lower(), "category": e["category"]}
            for e in json.loads((folder / "emoji.json").read_text()) if e.get("has_img_google", True)]
    return pd.DataFrame(rows), folder


def export(out_dir: str | Path, source: str | Path | None = None, seed: int = 0) -> dict[str, Path]:
    """Write train/valid/test CSVs plus an ``img/`` folder; returns the CSV paths by split name."""
    frame, _ = load_frame(source)
    out = Path(out_dir)
    (out / "img").mkdir(parents=True, exist_ok=True)
    for path in frame["image"]:
        target = out / "img" / Path(path).name
        if not target.exists():
            shutil.copyfile(path, target)
    frame["image"] = "img/" + frame["image"].map(lambda p: Path(p).name)
    strata = frame["category"].to_numpy()
    rest, test = split_rows(strata, len(frame), 0.15, seed)
    train, valid = split_rows(strata[rest], len(rest), 0.15 / 0.85, seed)
    splits = {"train": frame.iloc[rest[train]], "valid": frame.iloc[rest[valid]], "test": frame.iloc[test]}
    paths = {}
    for name, part in splits.items():
        paths[name] = out / f"{name}.csv"
        part.to_csv(paths[name], index=False)
    return paths
