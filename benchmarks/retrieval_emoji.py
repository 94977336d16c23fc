"""Image <-> name retrieval on the real emoji table (test split held out), and what the feature cache buys.

    python benchmarks/retrieval_emoji.py [--threads 2] [--data data/emoji] [--seeds 0,1,2]

Models, each in its own process:
  (a) frozen pretrained towers (MiniLM names, EfficientNet-Lite0 images), trained projections, preset ``retrieval``:
      first with an empty feature cache (features computed), then again with the cache filled;
  (b) towers trained from scratch (GRU names, small CNN images), preset ``scratch``;
  (c) a ridge-regression baseline on the same frozen features: image features -> name features, alpha tuned on
      validation, ranked by cosine similarity.
Prints Recall@1/5/10 in both directions, median rank, MRR, times, and zero-shot category accuracy.
Needs the exported table (``make data && mmfuse datasets export emoji data/emoji``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

import numpy as np

CHILD = """
import json, resource, sys, time, torch
from mmfuse import Retriever
preset, seed, threads, data, cache = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
start = time.perf_counter()
r = Retriever(query="name", target="image", preset=preset, seed=seed, threads=threads, cache_dir=cache, progress=False,
              verbose=False).fit(f"{data}/train.csv", valid=f"{data}/valid.csv")
fit_seconds = time.perf_counter() - start
test = r.evaluate(f"{data}/test.csv")
shot = r.zero_shot(f"{data}/test.csv", "category", prompt="{}") if preset == "retrieval" else {}
epochs = [h["seconds"] for h in r.history_]
print(json.dumps({"fit_seconds": fit_seconds, "epochs": len(epochs), "first_epoch": epochs[0],
                  "later_epoch": sum(epochs[1:]) / max(len(epochs) - 1, 1), "features": r.metrics_.get("features", {}),
                  "parameters": r.metrics_["parameters"], "zero_shot": shot.get("accuracy"),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **test}))
"""

RIDGE = """
import json, sys, numpy as np, pandas as pd, torch
from pathlib import Path
from sklearn.linear_model import Ridge
from mmfuse.modalities.image.pretrained import PretrainedImageProcessor
from mmfuse.modalities.text.pretrained import PretrainedTextProcessor
from mmfuse.tasks.retrieval import retrieval_metrics
threads, data, cache = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
torch.set_num_threads(threads)
text, image = PretrainedTextProcessor("name", "minilm"), PretrainedImageProcessor("image")
feats = {}
for proc, col in ((text, "name"), (image, "image")):
    proc.use_cache(cache)
    proc.fit(None, data)
    for split in ("train", "valid", "test"):
        feats[col, split] = proc.transform(pd.read_csv(data / f"{split}.csv")[col], data).values.numpy()

def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-8)

def scores(model, split):  # (N names, N images): cosine(name feature, predicted name feature of image)
    return unit(feats["name", split]) @ unit(model.predict(feats["image", split])).T

tuning = {}
for alpha in (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0):
    model = Ridge(alpha=alpha).fit(feats["image", "train"], feats["name", "train"])
    tuning[alpha] = retrieval_metrics(scores(model, "valid"))["mean_recall"]
best = max(tuning, key=tuning.get)
model = Ridge(alpha=best).fit(feats["image", "train"], feats["name", "train"])
print(json.dumps({"alpha": best, "tuning": {str(k): v for k, v in tuning.items()}, **retrieval_metrics(scores(model, "test"))}))
"""


def run(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def row(name: str, runs: list[dict], extra: str) -> str:
    def cell(key: str, digits: int = 3) -> str:
        values = np.array([r[key] for r in runs])
        return f"{values.mean():.{digits}f}" + (f" ± {values.std():.{digits}f}" if len(runs) > 1 else "")

    recalls = " | ".join(cell(f"{d}_r@{k}") for d in ("q2t", "t2q") for k in (1, 5, 10))
    return (f"| {name} | {recalls} | {cell('q2t_median_rank', 1)} / {cell('t2q_median_rank', 1)} | "
            f"{cell('q2t_mrr')} / {cell('t2q_mrr')} | {extra} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default="data/emoji")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = args.seeds.split(",")
    with tempfile.TemporaryDirectory() as cache:
        cold = run(CHILD, "retrieval", seeds[0], str(args.threads), args.data, cache)  # fills the feature cache
        frozen = [run(CHILD, "retrieval", seed, str(args.threads), args.data, cache) for seed in seeds]
        scratch = [run(CHILD, "scratch", seed, str(args.threads), args.data, cache) for seed in seeds]
        ridge = run(RIDGE, str(args.threads), args.data, cache)
    print(f"emoji: name <-> image retrieval, test split (288 pairs), {args.threads} threads, seeds {args.seeds} "
          "(mean ± std)\n")
    print("| model | name->image R@1 | R@5 | R@10 | image->name R@1 | R@5 | R@10 | median rank | MRR | notes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    warm = frozen[0]
    extraction = {s: sum(e["seconds"] for e in inputs.values()) for s, inputs in cold["features"].items()}
    cached = {s: sum(e["seconds"] for e in inputs.values()) for s, inputs in warm["features"].items()}
    print(row("(a) frozen pretrained, trained projection", frozen,
              f"{warm['parameters']:,} trained parameters; {warm['epochs']} epochs; "
              f"zero-shot category accuracy {np.mean([r['zero_shot'] for r in frozen]):.3f}"))
    print(row("(b) from scratch (GRU + CNN)", scratch,
              f"{scratch[0]['parameters']:,} parameters; {np.mean([r['epochs'] for r in scratch]):.0f} epochs "
              f"of {np.mean([r['later_epoch'] for r in scratch]):.2f} s; fit {np.mean([r['fit_seconds'] for r in scratch]):.1f} s"))
    print(row("(c) ridge, image -> name features", [ridge], f"alpha {ridge['alpha']:g} picked on validation"))
    print("\nFeature cache ((a), seed " + seeds[0] + "):\n")
    print("| run | train features | valid features | first epoch | later epoch (mean) | fit wall time |")
    print("|---|---|---|---|---|---|")
    for name, r, times in (("empty cache", cold, extraction), ("cache filled", warm, cached)):
        print(f"| {name} | {times['train']:.2f} s | {times['valid']:.2f} s | {r['first_epoch'] * 1000:.0f} ms | "
              f"{r['later_epoch'] * 1000:.0f} ms | {r['fit_seconds']:.1f} s |")
    uncached_epoch = extraction["train"] + warm["later_epoch"]
    print(f"\nAn epoch that ran the backbones (no cache) would take >= {uncached_epoch:.1f} s (train features + "
          f"projection); cached: {warm['later_epoch'] * 1000:.0f} ms, {uncached_epoch / warm['later_epoch']:.0f}x faster. "
          f"Ridge validation mean recall by alpha: {ridge['tuning']}")


if __name__ == "__main__":
    main()
