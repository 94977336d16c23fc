"""Load test of ``mmfuse serve`` on 127.0.0.1: latency percentiles, throughput, errors, and malformed requests.

    .venv/bin/python benchmarks/serve_load.py [--model runs/serve-load/model] [--requests 1000] [--concurrency 16]

Trains the default preset on the emoji table first if no model is given (``make data && mmfuse datasets export
emoji data/emoji``), starts ``mmfuse serve`` pinned to core 0 (``taskset``), and drives it from this process pinned to
core 1: ``--requests`` valid /predict requests (one emoji test row each: its name and PNG as base64, explain on, so
each is 1 + M + 2^M forward passes) at ``--concurrency`` in flight, then 200 malformed ones (bad JSON, unknown
columns, paths instead of uploads, oversized bodies, wrong types), which must all get a 4xx, then 200 hostile ones
(JSON nested 5000 deep, a PNG header claiming 10^10 pixels, a PNG with a broken chunk, an .npy claiming 8 TB sent as
an image, lone surrogates in a value and in a column name), which must get a 2xx (masked and said) or a 4xx; the
server's peak resident memory over the hostile run (its idle figure taken after 16 warm-up requests) must stay
within 1.5x of idle, and its log must hold no traceback. Then the largest requests the default limits allow, each
alone with its own peak: 256 rows (8 distinct 8x8 PNGs, explain on), a 1,000,000-character name (the text limit),
a 3.9 MB name (above it: masked); clients that stall mid-body (answered 408 after ``--body-timeout``) and that go
away mid-body (one log line each, no traceback); and a request whose work outlives ``--timeout`` (256 rows of
distinct 64x64 PNGs, explain on) followed at once by a one-row request: the seconds that one waits. Prints two
tables.
The server's feature cache starts empty (a temporary folder), so every request runs the frozen backbones on its
image and name (that part is PyTorch in both backends). Both backends, one after the other, on the same cores; then
the model alone (prepared inputs -> outputs: every member of a portfolio, fp32) per row with each backend.
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the corpus helpers in tests/


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_model(out: Path, threads: int) -> Path:
    from mmfuse import Predictor

    Predictor(label="category", threads=threads, progress=False, verbose=False).fit(
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


def hostile_bodies(n: int) -> list[bytes]:
    """Requests built to exhaust the server (see the module docstring), from the bad-input corpus's helpers."""
    from tests.corpus import npy_claiming, png_broken_chunk, png_header_only

    folder = Path(tempfile.mkdtemp(prefix="mmfuse-hostile-"))
    files = [png_header_only(folder / "bomb.png", 100_000, 100_000), png_broken_chunk(folder / "broken.png"),
             npy_claiming(folder / "huge.npy", (1_000_000, 1_000_000))]
    images = [json.dumps({"rows": [{"name": "grinning face", "image": base64.b64encode(f.read_bytes()).decode()}]})
              for f in files]
    kinds = [b'{"rows": ' + b"[" * 5000 + b"]" * 5000 + b"}", b'{"rows": [{"name": "a \\ud800 b"}]}',
             b'{"rows": [{"\\ud800": 1}]}', json.dumps({"rows": [{"name": "[" * 3000}]}).encode(),
             *(body.encode() for body in images)]
    return [kinds[i % len(kinds)] for i in range(n)]


def png_b64(seed: int, size: int) -> str:
    import io

    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def oversized_bodies() -> dict[str, bytes]:
    """The largest requests the default limits allow (and one text above the text limit)."""
    pngs = [png_b64(k, 8) for k in range(8)]
    return {"256 rows, 8 distinct PNGs": json.dumps({"rows": [{"name": f"face {i}", "image": pngs[i % 8]}
                                                              for i in range(256)], "explain": True}).encode(),
            "a 1,000,000-character name": json.dumps({"rows": [{"name": "word " * 199_999 + "end",
                                                                "image": pngs[0]}]}).encode(),
            "a 3.9 MB name (masked)": json.dumps({"rows": [{"name": "word " * 800_000, "image": pngs[0]}]}).encode()}


async def stalled(port: int, body: bytes, sent: int, hang_up: bool) -> int | None:
    """A client that sends ``sent`` bytes of a body, then waits for the answer (its status) or hangs up (None)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:sent])
    await writer.drain()
    if hang_up:
        writer.close()
        return None
    status = int((await reader.readline()).split()[1])
    writer.close()
    return status


def rss_mb(pid: int, field: str) -> float:
    """A process's ``VmRSS`` (now) or ``VmHWM`` (its peak) in MB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no {field} for process {pid}")


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
    parser.add_argument("--backends", default="torch,onnx", help="comma-separated: torch, onnx")
    parser.add_argument("--timeout", type=float, default=5.0, help="the server's --timeout (the timed-out case)")
    parser.add_argument("--body-timeout", type=float, default=5.0, help="the server's --body-timeout")
    args = parser.parse_args()
    if not (DATA / "test.csv").is_file():
        raise SystemExit(f"{DATA} not found: make data && .venv/bin/mmfuse datasets export emoji {DATA}")
    model = args.model or Path("runs/serve-load/model")
    if not (model / "config.json").is_file():
        print(f"training the default preset on {DATA} -> {model}", flush=True)
        train_model(model, 2)
    mmfuse = str(Path(sys.executable).with_name("mmfuse"))
    subprocess.run([mmfuse, "export", str(model), "--out", str(model / "model.onnx")], check=True,
                   stdout=subprocess.DEVNULL)
    os.sched_setaffinity(0, {1})  # the client on core 1, the server on core 0
    rows = []
    for backend in args.backends.split(","):
        rows.append(measure(mmfuse, model, backend, args))
    print(f"\n{args.requests} /predict requests (1 emoji row each, explain on) at {args.concurrency} concurrent; "
          f"server: 1 core, {args.threads} torch thread(s), an empty feature cache; client on another core\n")
    print("| backend | p50 ms | p90 ms | p99 ms | requests/s | errors | malformed -> 4xx | hostile -> 2xx/4xx | "
          "RSS idle -> peak under hostile MB | tracebacks in log | model alone per row |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['p50']:.0f} | {r['p90']:.0f} | {r['p99']:.0f} | {r['rps']:.1f} | {r['errors']} | "
              f"{r['four_xx']} / {r['malformed']} | {r['hostile_ok']} / {r['hostile']} | "
              f"{r['idle_mb']:.0f} -> {r['hostile_peak_mb']:.0f} ({r['hostile_peak_mb'] / r['idle_mb']:.2f}x) | "
              f"{r['tracebacks']} | {1000 * r['model_ms']:.1f} µs |")
    print(f"\nlimits: --timeout {args.timeout:g} s, --body-timeout {args.body_timeout:g} s\n")
    print("| backend | " + " | ".join(f"{name}: status, s, peak / idle" for name in oversized_bodies()) +
          " | stalled mid-body -> 408 | gone mid-body: log lines | timed out: status, s; next request waits s |")
    print("|---|" + "---|" * (len(oversized_bodies()) + 3))
    for r in rows:
        print(f"| {r['backend']} | " + " | ".join(f"{o['status']}, {o['seconds']:.1f}, {o['peak_mb'] / r['idle_mb']:.2f}x"
                                                for o in r["oversized"].values()) +
              f" | {r['stalled_408']} / {r['stalled']} | {r['gone_lines']} / {r['gone']} | "
              f"{r['timed_out_status']}, {r['timed_out_s']:.1f}; {r['next_waits_s']:.1f} |")
    if any(r["errors"] or r["four_xx"] != r["malformed"] or r["hostile_ok"] != r["hostile"] or r["tracebacks"]
           or r["hostile_peak_mb"] > 1.5 * r["idle_mb"]
           or any(o["peak_mb"] > 1.5 * r["idle_mb"] or o["status"] != 200 for o in r["oversized"].values())
           or r["stalled_408"] != r["stalled"] or r["gone_lines"] != r["gone"]
           or r["next_waits_s"] > args.timeout + 2 for r in rows):
        raise SystemExit("unexpected answers, a traceback in the server's log, memory past 1.5x idle, or a timed-out "
                         "request that kept the next one waiting")


def model_ms(model: Path, backend: str, threads: int) -> float:
    """Milliseconds per row of the model alone (prepared inputs -> outputs), batch 256 of the emoji test rows."""
    import torch

    from mmfuse import Predictor

    torch.set_num_threads(threads)
    predictor = Predictor.load(model, verbose=False, backend=backend)
    predictor.config_.train.precision = "32"  # both backends in fp32
    _, split = predictor.prepare(DATA / "test.csv")
    predictor.predict_outputs(split)  # warm-up
    start = time.perf_counter()
    for _ in range(5):
        predictor.predict_outputs(split)
    return (time.perf_counter() - start) / 5 / len(split.rows) * 1000


def measure(mmfuse: str, model: Path, backend: str, args: argparse.Namespace) -> dict:
    port, cache = free_port(), tempfile.mkdtemp(prefix="mmfuse-serve-cache-")
    log = Path(cache) / "server.log"
    with log.open("w") as sink:
        server = subprocess.Popen(["taskset", "-c", "0", mmfuse, "serve", str(model), "--port", str(port),
                                   "--threads", str(args.threads), "--cache-dir", cache, "--backend", backend,
                                   "--timeout", str(args.timeout), "--body-timeout", str(args.body_timeout)],
                                  stdout=sink, stderr=subprocess.STDOUT)
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
            raise SystemExit(f"the server did not start: {log.read_text()}")
        asyncio.run(drive(url, valid_bodies(16), args.concurrency))  # warm: backbones loaded, caches touched
        idle = rss_mb(server.pid, "VmRSS")
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # the peak (VmHWM) counts from here
        _, hostile_statuses, _ = asyncio.run(drive(url, hostile_bodies(200), args.concurrency))
        hostile_peak = rss_mb(server.pid, "VmHWM")
        latencies, statuses, seconds = asyncio.run(drive(url, valid_bodies(args.requests), args.concurrency))
        bad_latencies, bad_statuses, _ = asyncio.run(drive(url, malformed_bodies(200), args.concurrency))
        edges = edge_cases(url, port, server.pid, args)
    finally:
        server.terminate()
        server.wait(timeout=30)
    ms = np.asarray(latencies) * 1000
    return {"backend": backend, "p50": np.percentile(ms, 50), "p90": np.percentile(ms, 90),
            "p99": np.percentile(ms, 99), "rps": args.requests / seconds, "errors": sum(s != 200 for s in statuses),
            "four_xx": sum(400 <= s < 500 for s in bad_statuses), "malformed": len(bad_statuses),
            "hostile_ok": sum(200 <= s < 300 or 400 <= s < 500 for s in hostile_statuses),
            "hostile": len(hostile_statuses), "idle_mb": idle, "hostile_peak_mb": hostile_peak,
            "tracebacks": log.read_text().count("Traceback"), "model_ms": model_ms(model, backend, args.threads),
            **edges, "gone_lines": log.read_text().count("the client went away before its request was read")}


def edge_cases(url: str, port: int, pid: int, args: argparse.Namespace) -> dict:
    """The largest allowed requests (each alone: its status, seconds and peak memory), stalled and vanishing
    clients, and a timed-out request followed by a one-row one."""
    import httpx

    oversized = {}
    for name, body in oversized_bodies().items():
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        start = time.perf_counter()
        answer = httpx.post(f"{url}/predict", content=body, headers={"content-type": "application/json"},
                            timeout=600)
        oversized[name] = {"status": answer.status_code, "seconds": time.perf_counter() - start,
                           "peak_mb": rss_mb(pid, "VmHWM")}
    body = valid_bodies(1)[0]

    async def clients() -> list:
        return await asyncio.gather(*(stalled(port, body, len(body) // 2, hang_up=k % 2 == 1) for k in range(8)))
    statuses = asyncio.run(clients())
    slow = json.dumps({"rows": [{"name": f"face {i}", "image": png_b64(1000 + i, 64)} for i in range(256)],
                       "explain": True}).encode()

    async def timed_out() -> tuple[int, float, float]:
        async with httpx.AsyncClient(timeout=600) as client:
            start = time.perf_counter()
            first = asyncio.create_task(client.post(f"{url}/predict", content=slow,
                                                    headers={"content-type": "application/json"}))
            await asyncio.sleep(0.5)  # the first one holds the model
            answer = await first
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            await client.post(f"{url}/predict", content=body, headers={"content-type": "application/json"})
            return answer.status_code, seconds, time.perf_counter() - start
    status, seconds, waits = asyncio.run(timed_out())
    return {"oversized": oversized, "stalled": sum(s is not None for s in statuses),
            "stalled_408": statuses.count(408), "gone": statuses.count(None), "timed_out_status": status,
            "timed_out_s": seconds, "next_waits_s": waits}


if __name__ == "__main__":
    main()
