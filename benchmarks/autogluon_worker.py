"""One AutoGluon TabularPredictor run, in the peers' own venv (``make peers``: .venv-peers), never the project's.

    .venv-peers/bin/python benchmarks/autogluon_worker.py '{"folder": ..., "label": ..., "task": ..., ...}'

Reads train / valid / test parquet files that ``realdata.py`` prepared (text, number and category columns as they
are, images and sequences as dense feature columns), fits ``medium_quality`` with the given time limit on the given
CPU threads (the validation split as its tuning data), and prints ``RESULT {"valid": ..., "test": ..., "predicted": [each test row's prediction], ...}``.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

import numpy as np
import pandas as pd

PROBLEM = {"binary": ("binary", "accuracy"), "multiclass": ("multiclass", "accuracy"),
           "regression": ("regression", "root_mean_squared_error")}


def main(args: dict) -> None:
    from autogluon.tabular import TabularPredictor

    folder = Path(args["folder"])
    splits = {s: pd.read_parquet(folder / f"{s}.parquet") for s in ("train", "valid", "test")}
    problem, metric = PROBLEM[args["task"]]
    predictor = TabularPredictor(label=args["label"], problem_type=problem, eval_metric=metric,
                                 path=str(folder / "ag"), verbosity=0)
    predictor.fit(splits["train"], tuning_data=splits["valid"], presets="medium_quality",
                  time_limit=args["time_limit"], num_cpus=args["threads"], num_gpus=0)

    def score(split: str) -> float:
        frame = splits[split]
        pred = predictor.predict(frame.drop(columns=[args["label"]]))
        truth = frame[args["label"]]
        if problem == "regression":
            return float(np.sqrt(np.mean((pred.to_numpy(float) - truth.to_numpy(float)) ** 2)))
        return float((pred.astype(str).to_numpy() == truth.astype(str).to_numpy()).mean())

    board = predictor.leaderboard(splits["valid"], silent=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    predicted = predictor.predict(splits["test"].drop(columns=[args["label"]]))
    predicted = predicted.astype(float if problem == "regression" else str).tolist()
    print("RESULT " + json.dumps({"valid": score("valid"), "test": score("test"), "peak_mb": peak_mb,
                                  "predicted": predicted,
                                  "best_model": str(predictor.model_best), "models": len(board)}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
