"""Load test of ``mmfuse serve`` on 127.0.0.1: latency percentiles, throughput, errors, and malformed requests.

    .venv/bin/python benchmarks/serve_load.py [--model runs/serve-load/model] [--requests 1000] [--concurrency 16]

Trains the default preset on the emoji table first if no model is given (``make data && mmfuse datasets export
emoji data/emoji``), starts ``mmfuse serve`` pinned to core 0 (``taskset``), and drives it from this process pinned to
core 1: ``--requests`` valid /predict requests (one emoji test row each: its name and PNG as base64, explain on, so
each is 1 + M + 2^M forward passes) at ``--concurrency`` in flight, then 200 malformed ones (bad JSON, unknown
columns, paths instead of uploads, oversized bodies, wrong types), which must all get a 4xx. Prints one table.
The server's feature cache starts empty (a temporary folder), so the first request of each image runs the backbone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path("data/emoji")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_model(out: Path, threads: int) -> Path:
    from mmfuse import Predictor

    Predictor("category", threads=threads, progress=False, verbose=False).fit(
        DATA / "train.csv", valid=DATA / "valid.csv").save(out)
    return out


def valid_bodies(n: int) -> list[bytes]:
    test = pd.read_csv(DATA / "test.csv")
    rows = [{"name": name, "image": base64.b64encode((DATA / image).read_bytes()).decode()}
            for name, image in zip(test["name"], test["image"])]
    return [json.dumps({"rows": [rows[i % len(rows)]], "explain": True}).encode() for i in range(n)]


def malformed_bodies(n: int) -> list[bytes]:
    kinds = [b"{not json", b"[]", json.dumps({"rows": []}).encode(), json.dumps({"rows": [{"nope": 1}]}).encode(),
             json.dumps({"rows": [{"image": "/etc/passwd"}]}).encode(),
             json.dumps({"rows": [{"name": {"a": 1}}]}).encode(), json.dumps({"rows": "x"}).encode(),
             json.dumps({"rows": [{"name": "a"}], "explain": "yes"}).encode(), b"x" * (21 * 1024 * 1024)]
    return [kinds[i % len(kinds)] for i in range(n)]


async def drive(url: str, bodies: list[bytes], concurrency: int) -> tuple[list[float], list[int], float]:
    import httpx

    latencies, statuses = [0.0] * len(bodies), [0] * len(bodies)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(bodies)):
        queue.put_nowait(i)
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                start = time.perf_counter()
                try:
                    answer = await client.post(f"{url}/predict", content=bodies[i],
                                               headers={"content-type": "application/json"})
                    statuses[i] = answer.status_code
                except httpx.HTTPError:
                    statuses[i] = -1
                latencies[i] = time.perf_counter() - start
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, statuses, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a saved model (default: train the default preset on emoji)")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server (it has one core)")
    args = parser.parse_args()
    if not (DATA / "test.csv").is_file():
        raise SystemExit(f"{DATA} not found: make data && .venv/bin/mmfuse datasets export emoji {DATA}")
    model = args.model or Path("runs/serve-load/model")
    if not (model / "config.json").is_file():
        print(f"training the default preset on {DATA} -> {model}", flush=True)
        train_model(model, 2)
    os.sched_setaffinity(0, {1})  # the client on core 1, the server on core 0
    port, cache = free_port(), tempfile.mkdtemp(prefix="mmfuse-serve-cache-")
    server = subprocess.Popen(["taskset", "-c", "0", str(Path(sys.executable).with_name("mmfuse")), "serve",
                               str(model), "--port", str(port), "--threads", str(args.threads), "--cache-dir", cache],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise SystemExit(f"the server did not start: {server.stderr.read() if server.poll() else ''}")
        latencies, statuses, seconds = asyncio.run(drive(url, valid_bodies(args.requests), args.concurrency))
        bad_latencies, bad_statuses, _ = asyncio.run(drive(url, malformed_bodies(200), args.concurrency))
    finally:
        server.terminate()
        server.wait(timeout=30)
    ms = np.asarray(latencies) * 1000
    errors = sum(s != 200 for s in statuses)
    four_xx = sum(400 <= s < 500 for s in bad_statuses)
    print(f"\n{args.requests} /predict requests (1 emoji row each, explain on) at {args.concurrency} concurrent; "
          f"server: 1 core, {args.threads} torch thread(s); client on another core\n")
    print("| backend | p50 ms | p90 ms | p99 ms | requests/s | errors | malformed -> 4xx |")
    print("|---|---|---|---|---|---|---|")
    print(f"| pytorch | {np.percentile(ms, 50):.0f} | {np.percentile(ms, 90):.0f} | {np.percentile(ms, 99):.0f} | "
          f"{args.requests / seconds:.1f} | {errors} | {four_xx} / {len(bad_statuses)} |")
    if errors or four_xx != len(bad_statuses):
        raise SystemExit(f"unexpected answers: {sorted(set(statuses) | set(bad_statuses))}")


if __name__ == "__main__":
    main()
