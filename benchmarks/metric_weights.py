"""What ``eval_metric`` and ``class_weight`` change on a real table: ``default`` fitted on its labelled rows (train +
valid, as ``mmfuse fit`` with no options gets them) as it is, with ``eval_metric`` naming another metric, and with
``class_weight="balanced"``, each seed the same for the three; every metric on the test rows.

    .venv/bin/python benchmarks/metric_weights.py [--tables fortunes] [--seeds 0,1,2] [--metric macro_f1] [--threads 2]

Prints a table per table: test accuracy, macro-F1 and balanced accuracy (mean over seeds) per setting, and the
difference from ``default`` with its 95% paired bootstrap interval over the test rows (seed-mean row scores).
The tables are benchmarks/realdata.py's (``make realdata``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from realdata_tables import build  # noqa: E402

METRICS = ("accuracy", "macro_f1", "balanced_accuracy")


def fit_and_predict(spec, settings: dict, seed: int, threads: int) -> tuple[np.ndarray, float]:
    """The test rows' predicted classes of ``default`` with ``settings``, and the fit's seconds."""
    from mmfuse import Predictor

    start = time.perf_counter()
    model = Predictor(label=spec.label, seed=seed, threads=threads, progress=False, verbose=False, **settings)
    model.fit(spec.folder / "labelled.csv")
    seconds = time.perf_counter() - start
    return model.predict(spec.folder / "test.csv").astype(str).to_numpy(), seconds


def scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as skm

    return {"accuracy": skm.accuracy_score(truth, predicted),
            "macro_f1": skm.f1_score(truth, predicted, average="macro"),
            "balanced_accuracy": skm.balanced_accuracy_score(truth, predicted)}


def paired_interval(truth: np.ndarray, runs: list[np.ndarray], base: list[np.ndarray], metric: str,
                    draws: int = 1000) -> tuple[float, float]:
    """95% bootstrap interval of metric(runs) - metric(base) over the test rows, each side the mean over seeds."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(draws):
        rows = rng.integers(len(truth), size=len(truth))
        diff = [scores(truth[rows], r[rows])[metric] - scores(truth[rows], b[rows])[metric] for r, b in zip(runs, base)]
        out.append(np.mean(diff))
    return float(np.percentile(out, 2.5)), float(np.percentile(out, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", default="fortunes")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--metric", default="macro_f1")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = {"default": {}, f"eval_metric={args.metric}": {"eval_metric": args.metric},
                "class_weight=balanced": {"class_weight": "balanced"}}
    for table in args.tables.split(","):
        spec = build(table)
        truth = pd.read_csv(spec.folder / "test.csv")[spec.label].astype(str).to_numpy()
        runs = {name: [fit_and_predict(spec, s, seed, args.threads) for seed in seeds] for name, s in settings.items()}
        print(f"\n**{table}** ({len(truth)} test rows; seeds {args.seeds}; {args.threads} threads)\n")
        print("| setting | " + " | ".join(f"test {m}" for m in METRICS) + " | fit s |")
        print("|---|" + "---|" * (len(METRICS) + 1))
        base = [p for p, _ in runs["default"]]
        for name, done in runs.items():
            predicted = [p for p, _ in done]
            cells = []
            for metric in METRICS:
                mean = np.mean([scores(truth, p)[metric] for p in predicted])
                if name == "default":
                    cells.append(f"{mean:.4f}")
                else:
                    low, high = paired_interval(truth, predicted, base, metric)
                    gain = mean - np.mean([scores(truth, p)[metric] for p in base])
                    cells.append(f"{mean:.4f} ({gain:+.4f} [{low:+.4f}, {high:+.4f}])")
            print(f"| {name} | " + " | ".join(cells) + f" | {np.mean([s for _, s in done]):.0f} |")


if __name__ == "__main__":
    main()
