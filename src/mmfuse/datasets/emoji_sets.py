"""The emoji-sets table: each emoji drawn by several vendors, a set of images per row, labelled by category.

Source: the npm packages ``emoji-datasource-{google,apple,twitter,facebook}@16.0.0`` (64 px PNG; the vendors'
images carry their own licences: built locally by ``make data-sets``, never committed), unpacked under
``data/npm/emoji-datasource-<vendor>``. 1,911 emoji (1,857 drawn by all four vendors, 54 by three), 10 categories.

``export`` writes three tables, each split 70/15/15 stratified by category with a fixed seed (the same rows in each):

- ``sets/``: ``images`` holds a JSON list of the row's vendors' images, each kept with probability ``keep`` (at least
  one), in a random order: 1 to 4 images per row (~3 on average).
- ``one/``: ``image`` holds one of the row's ``sets/`` images, drawn at random: the same table with one image a row.
- ``new-style/``: train and valid rows hold only the images of three vendors (google, apple, twitter; drawn as in
  ``sets/``); each test row holds only the fourth vendor's (``HELD_OUT``: facebook) image: can a model read a style
  it never saw?
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.table import split_rows
from ..errors import DataError

VENDORS = ("google", "apple", "twitter", "facebook")
HELD_OUT = "facebook"
VERSION = "16.0.0"
DEFAULT_ROOT = Path("data/npm")


def fetch_hint(root: Path) -> str:
    return (f"for each vendor V of {', '.join(VENDORS)}: mkdir -p {root}/emoji-datasource-V && npm pack "
            f"emoji-datasource-V@{VERSION} --pack-destination {root} && tar xzf {root}/emoji-datasource-V-{VERSION}.tgz "
            f"-C {root}/emoji-datasource-V --strip-components=1  (or run: make data-sets)")


def load_frame(root: str | Path = DEFAULT_ROOT) -> pd.DataFrame:
    """One row per emoji: ``name``, ``category`` and ``vendors`` (vendor -> absolute PNG path, the vendors that
    draw it)."""
    root = Path(root)
    folders = {v: root / f"emoji-datasource-{v}" for v in VENDORS}
    missing = [v for v, f in folders.items() if not (f / "emoji.json").is_file() or not (f / "img" / v / "64").is_dir()]
    if missing:
        raise DataError(f"emoji images of {', '.join(missing)} not found under {root}; fetch them: {fetch_hint(root)}")
    rows = []
    for entry in json.loads((folders["google"] / "emoji.json").read_text()):
        drawn = {v: folders[v] / "img" / v / "64" / entry["image"] for v in VENDORS if entry.get(f"has_img_{v}")}
        drawn = {v: p for v, p in drawn.items() if p.is_file()}
        if drawn:
            rows.append({"name": entry["name"].lower(), "category": entry["category"], "vendors": drawn})
    return pd.DataFrame(rows)


def _draw(vendors: dict[str, Path], allowed: tuple[str, ...], keep: float, rng: np.random.Generator) -> list[str]:
    """A random subset of the row's allowed vendors (each kept with probability ``keep``, at least one), shuffled;
    as image paths relative to a table folder beside ``img/``."""
    names = [v for v in allowed if v in vendors]
    kept = [v for v in names if rng.random() < keep] or [names[rng.integers(len(names))]]
    return [f"../img/{v}/{vendors[v].name}" for v in rng.permutation(kept)]


def export(out_dir: str | Path, root: str | Path = DEFAULT_ROOT, seed: int = 0, keep: float = 0.75) -> dict[str, Path]:
    """Write ``sets/``, ``one/`` and ``new-style/`` (train/valid/test CSVs each) and ``img/<vendor>/``; returns the
    table folders by name."""
    frame = load_frame(root)
    out = Path(out_dir)
    for vendor in VENDORS:
        (out / "img" / vendor).mkdir(parents=True, exist_ok=True)
    for vendors in frame["vendors"]:
        for vendor, path in vendors.items():
            target = out / "img" / vendor / path.name
            if not target.exists():
                shutil.copyfile(path, target)
    rng = np.random.default_rng(seed)
    every = VENDORS
    seen = tuple(v for v in VENDORS if v != HELD_OUT)
    sets = [_draw(v, every, keep, rng) for v in frame["vendors"]]
    one = [s[rng.integers(len(s))] for s in sets]
    styled = [_draw(v, seen, keep, rng) for v in frame["vendors"]]
    held_out = [[f"../img/{HELD_OUT}/{v[HELD_OUT].name}"] if HELD_OUT in v else [] for v in frame["vendors"]]
    strata = frame["category"].to_numpy()
    rest, test = split_rows(strata, len(frame), 0.15, seed)
    train, valid = split_rows(strata[rest], len(rest), 0.15 / 0.85, seed)
    parts = {"train": rest[train], "valid": rest[valid], "test": test}
    tables = {"sets": pd.DataFrame({"images": [json.dumps(s) for s in sets]}),
              "one": pd.DataFrame({"image": one}),
              "new-style": pd.DataFrame({"images": [json.dumps(s) for s in styled]})}
    folders = {}
    for name, table in tables.items():
        folders[name] = out / name
        folders[name].mkdir(parents=True, exist_ok=True)
        table = table.assign(category=frame["category"])
        for split, rows in parts.items():
            part = table.iloc[rows]
            if name == "new-style" and split == "test":  # only the held-out vendor's image, rows that have one
                part = part.assign(images=[json.dumps(held_out[i]) for i in rows])
                part = part[[bool(held_out[i]) for i in rows]]
            part.to_csv(folders[name] / f"{split}.csv", index=False)
    return folders
