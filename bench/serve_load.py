"""A bounded load test of `ndogo serve`: throughput and latency at 1, 8 and 32 concurrent clients.

Starts `ndogo serve BUNDLE` on a free loopback port (one model thread), then for
each concurrency C runs C clients that each send one sentence per request, back
to back, until `--requests` requests are done or `--seconds` have passed,
whichever comes first; the server is stopped with SIGTERM at the end (and
killed if it does not exit). Against it, in the same run, the bare model: the
same bundle loaded in this process (`ndogo.load`, one thread), raw sentences to
entities, one at a time (batch 1) and 32 at a time (batch 32). Everything is
loopback, bounded in requests and time, and stops by itself.

The clients (httpx, asyncio) run on the same machine as the server and take
CPU from it; that is part of what is measured. The timing lock is held
throughout so no other timing of this machine's jobs overlaps it.

    nice -n 19 .venv/bin/python bench/serve_load.py BUNDLE --data ../shared/data/masakhaner --lang luo \
        --max-batch 4 --csv serve-load.csv
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_cold import bench_lock


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sentences(data: str, lang: str, n: int) -> list[str]:
    from ndogo.data.conll import read_conll

    sents = read_conll(Path(data) / lang / "test.txt").sentences
    return [" ".join(s.tokens) for s in sents[:n]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bare(bundle: str, texts: list[str], seconds: float) -> list[dict[str, Any]]:
    """The model without the server: sentences/s at batch 1 and at batch 32, raw text to entities."""
    import ndogo

    predictor = ndogo.load(bundle, threads=1)
    predictor.predict(texts[:32])
    rows = []
    for batch in (1, 32):
        done, calls, t0 = 0, [], time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            k = done % len(texts)
            chunk = (texts * 2)[k : k + batch]
            start = time.perf_counter()
            predictor.predict(chunk)
            calls.append(time.perf_counter() - start)
            done += len(chunk)
        elapsed = time.perf_counter() - t0
        # p50/p99 of one model call (of `batch` sentences)
        rows.append({"mode": f"bare-b{batch}", "clients": 0, "requests": done, "errors": 0,
                     "seconds": round(elapsed, 2), "throughput_per_s": round(done / elapsed, 2),
                     "p50_ms": round(1000 * statistics.median(calls), 2),
                     "p99_ms": round(1000 * percentile(calls, 0.99), 2)})
    return rows


async def load(url: str, texts: list[str], clients: int, requests: int, seconds: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    sent = 0
    t0 = time.perf_counter()

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal sent, errors
        while sent < requests and time.perf_counter() - t0 < seconds:
            text = texts[sent % len(texts)]
            sent += 1
            start = time.perf_counter()
            try:
                answer = await http.post("/v1/entities", json={"text": text})
                ok = answer.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    return {"mode": f"serve-c{clients}", "clients": clients, "requests": len(latencies), "errors": errors,
            "seconds": round(elapsed, 2), "throughput_per_s": round(len(latencies) / elapsed, 2),
            "p50_ms": round(1000 * statistics.median(latencies), 2),
            "p99_ms": round(1000 * percentile(latencies, 0.99), 2)}


def wait_ready(url: str, proc: subprocess.Popen, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not start in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("--data", default="../shared/data/masakhaner")
    parser.add_argument("--lang", default="luo")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--requests", type=int, default=600, help="most requests per concurrency level")
    parser.add_argument("--seconds", type=float, default=40, help="most seconds per concurrency level")
    parser.add_argument("--bare-seconds", type=float, default=15)
    parser.add_argument("--max-wait-ms", type=float, default=5)
    parser.add_argument("--max-batch", type=int, default=4, help="the server's largest micro-batch (its default)")
    parser.add_argument("--lock", default="/tmp/ndogo-bench.lock")
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args()
    texts = sentences(args.data, args.lang, 200)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ndogo = [sys.executable, "-m", "ndogo"]
    proc = subprocess.Popen([*ndogo, "serve", args.bundle, "--port", str(port), "--threads", "1",
                             "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    rows: list[dict[str, Any]] = []
    try:
        wait_ready(url, proc, 120)
        with bench_lock(args.lock):
            rows += bare(args.bundle, texts, args.bare_seconds)
            for c in (int(x) for x in args.clients.split(",")):
                asyncio.run(load(url, texts, c, min(20, args.requests), 10))  # warm-up, not recorded
                rows.append(asyncio.run(load(url, texts, c, args.requests, args.seconds)))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    b32 = next(r["throughput_per_s"] for r in rows if r["mode"] == "bare-b32")
    for row in rows:
        row["server_max_batch"] = args.max_batch if row["clients"] else ""
        row["vs_bare_b32"] = round(row["throughput_per_s"] / b32, 3)
        print(json.dumps(row))
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[-1]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
