"""Pick the ``default`` preset on validation data (never test): candidates trained on the emoji table.

    python benchmarks/pick_default.py [--data data/emoji] [--threads 2]

Prints validation accuracy / macro-F1 / epochs / train time per candidate. Each candidate is the ``default``
preset with the overrides shown.
"""

from __future__ import annotations

import argparse
import time

from mmfuse import Predictor

CANDIDATES: dict[str, dict] = {
    "default (gru-bi + cnn, 4x4 pool, bf16, lr 1e-3)": {},
    "fp32 instead of bf16": {"train": {"precision": "32"}},
    "cnn global pool (1x1)": {"encoders": {"image": {"name": "cnn", "params": {"pool_grid": 1}}}},
    "cnn 2x2 pool": {"encoders": {"image": {"name": "cnn", "params": {"pool_grid": 2}}}},
    "text bow": {"encoders": {"text": {"name": "bow", "params": {"embed_dim": 128}}}},
    "text transformer": {"encoders": {"text": {"name": "transformer"}}},
    "text lstm": {"encoders": {"text": {"name": "lstm"}}},
    "image conv 28 px (seed branch)": {"encoders": {"image": {"name": "conv"}}, "preprocess": {"image": {"size": 28}}},
    "modality dropout 0.3": {"modality_dropout": 0.3},
    "lr 2e-3": {"train": {"lr": 0.002}},
    "seed recipe (lstm + conv, adam, 10 epochs)": {
        "encoders": {"text": {"name": "lstm"}, "image": {"name": "conv"}}, "head": {"hidden_dims": []},
        "preprocess": {"image": {"size": 28, "normalize": False, "augment": False}},
        "train": {"optimizer": "adam", "schedule": "constant", "batch_size": 32, "max_epochs": 10,
                  "early_stopping": False, "restore_best": False, "weight_decay": 0.0, "precision": "32"}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/emoji")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="candidate names to run")
    args = parser.parse_args()
    rows = []
    for name, overrides in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        p = Predictor("category", config=overrides, threads=args.threads, progress=False, verbose=False)
        p.fit(f"{args.data}/train.csv", valid=f"{args.data}/valid.csv")
        v = p.metrics_["valid"]
        rows.append((name, v["accuracy"], v["macro_f1"], p.metrics_["epochs"], time.perf_counter() - start))
        print(f"{name:38s} acc {v['accuracy']:.3f}  macro-F1 {v['macro_f1']:.3f}  epochs {rows[-1][3]:2d}  "
              f"{rows[-1][4]:6.1f} s", flush=True)
    print("\n| candidate | valid accuracy | valid macro-F1 | epochs | train time |\n|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: -r[1]):
        print(f"| {r[0]} | {r[1]:.3f} | {r[2]:.3f} | {r[3]} | {r[4]:.1f} s |")


if __name__ == "__main__":
    main()
