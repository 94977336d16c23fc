"""Does training with modality dropout keep a model useful when an input is missing at test time?

    python benchmarks/modality_dropout.py [--data data/avdigits-hard] [--dropout 0.3] [--seed 0] [--threads 2]

Trains the default preset with and without modality dropout and prints, on the test split, the score with every
input, with each input removed, the Shapley contributions, and the relative robustness of each corruption curve.
"""

from __future__ import annotations

import argparse

from mmfuse import Predictor
from mmfuse.analysis.robustness import robustness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/avdigits-hard")
    parser.add_argument("--label", default="digit")
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    reports = {}
    for p in (0.0, args.dropout):
        predictor = Predictor(label=args.label, modality_dropout=p, seed=args.seed, threads=args.threads, progress=False,
                              verbose=False).fit(f"{args.data}/train.csv", valid=f"{args.data}/valid.csv")
        reports[p] = robustness(predictor, f"{args.data}/test.csv")
    inputs = sorted(reports[0.0].without)
    metric = reports[0.0].metric
    print(f"| modality dropout | test {metric} | " + " | ".join(f"without {i}" for i in inputs) + " | "
          + " | ".join(f"Shapley {i}" for i in inputs) + " |")
    print("|---" * (2 + 2 * len(inputs)) + "|")
    for p, r in reports.items():
        print(f"| {p} | {r.score:.3f} | " + " | ".join(f"{r.without[i]:.3f}" for i in inputs) + " | "
              + " | ".join(f"{r.shapley[i]:+.3f}" for i in inputs) + " |")
    print("\n| modality dropout | input | corruption | relative robustness |\n|---|---|---|---|")
    for p, r in reports.items():
        for name, by_corruption in r.relative().items():
            for corruption, value in by_corruption.items():
                print(f"| {p} | {name} | {corruption} | {value:.3f} |")


if __name__ == "__main__":
    main()
