"""Presets on the real emoji table (image + name -> category), each in its own process so its peak memory is its own.

    python benchmarks/emoji_presets.py [--presets seed,default,fast] [--seeds 0] [--threads 2] [--data data/emoji]

Needs the exported table (``make data && mmfuse datasets export emoji data/emoji``). Prints a Markdown table:
rows, epochs, wall time of fit, peak RSS of the process, and test accuracy / macro-F1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, sys, time
from mmfuse import Predictor
preset, seed, threads, data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
start = time.perf_counter()
p = Predictor(label="category", preset=preset, seed=seed, threads=threads, progress=False, verbose=False)
p.fit(f"{data}/train.csv", valid=f"{data}/valid.csv")
fit_seconds = time.perf_counter() - start
test = p.evaluate(f"{data}/test.csv")
print(json.dumps({"epochs": p.metrics_["epochs"], "fit_seconds": fit_seconds, "parameters": p.metrics_["parameters"],
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **test}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="seed,default")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default="data/emoji")
    args = parser.parse_args()
    rows = {split: sum(1 for _ in open(f"{args.data}/{split}.csv")) - 1 for split in ("train", "valid", "test")}
    print(f"emoji table: {rows['train']} train / {rows['valid']} valid / {rows['test']} test rows, "
          f"{args.threads} threads\n")
    print("| preset | seed | epochs | fit wall time | peak RSS | parameters | test accuracy | test macro-F1 |")
    print("|---|---|---|---|---|---|---|---|")
    for preset in args.presets.split(","):
        for seed in args.seeds.split(","):
            out = subprocess.run([sys.executable, "-c", CHILD, preset, seed, str(args.threads), args.data],
                                 capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            r = json.loads(out)
            print(f"| {preset} | {seed} | {r['epochs']} | {r['fit_seconds']:.1f} s | {r['peak_mb']:.0f} MB | "
                  f"{r['parameters']:,} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
