"""A bounded load test of `ndogo serve`: throughput and latency at 1, 8 and 32 concurrent clients.

For each worker count W of `--workers` (1,2 by default: both in one run), starts
`ndogo serve BUNDLE --workers W --threads 1` on a free loopback port (each
worker one model thread), then for each concurrency C runs C closed-loop
clients that each send one sentence per request, back to back, until
`--requests` requests are done or `--seconds` have passed, whichever comes
first; the server is stopped with SIGTERM before the next W (and killed if it
does not exit). Against it, in the same run, the bare model: the same bundle
loaded in this process (`ndogo.load`, one thread), raw sentences to entities,
one at a time (batch 1) and 32 at a time (batch 32). Everything is loopback,
bounded in requests and time, and stops by itself.

The clients (httpx, asyncio, one thread) run on the same machine as the server
and take CPU from it; that is part of what is measured, and each row says how
much: the load generator's CPU seconds per request and in cores (getrusage of
this process over the level), the server's (psutil, every worker included),
and how the requests split over the workers (the X-Ndogo-Worker header). Rows
with W > 1 give their throughput against W = 1 at the same C (vs_1_worker). The
timing lock is held throughout so no other timing of this machine's jobs
overlaps it.

    bench/quiet.sh python bench/serve_load.py BUNDLE --data ../shared/data/masakhaner --lang luo \
        --workers 1,2 --csv serve-workers.csv
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
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


def cpu_seconds(procs: list[Any]) -> float:
    """User and system CPU seconds of `procs` (psutil processes) so far; one that has gone counts 0."""
    import psutil

    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process: the clients' event loop
    return usage.ru_utime + usage.ru_stime


async def load(url: str, texts: list[str], clients: int, requests: int, seconds: float,
               server: list[Any] | None = None) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    by_worker: Counter[str] = Counter()
    errors = 0
    sent = 0
    server = server or []
    cpu0, server0 = own_cpu_seconds(), cpu_seconds(server)
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
                by_worker[answer.headers.get("x-ndogo-worker", "?")] += 1
            else:
                errors += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    cpu, server_cpu = own_cpu_seconds() - cpu0, cpu_seconds(server) - server0
    done = max(1, len(latencies))
    return {"mode": f"serve-c{clients}", "clients": clients, "requests": len(latencies), "errors": errors,
            "seconds": round(elapsed, 2), "throughput_per_s": round(len(latencies) / elapsed, 2),
            "p50_ms": round(1000 * statistics.median(latencies), 2) if latencies else "",
            "p99_ms": round(1000 * percentile(latencies, 0.99), 2) if latencies else "",
            "loadgen_cpu_ms_per_request": round(1000 * cpu / done, 3),
            "loadgen_cores": round(cpu / elapsed, 3),
            "server_cpu_ms_per_request": round(1000 * server_cpu / done, 3) if server else "",
            "server_cores": round(server_cpu / elapsed, 3) if server else "",
            "requests_per_worker": "/".join(str(n) for _, n in by_worker.most_common())}


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


def run_server(args: argparse.Namespace, workers: int, texts: list[str]) -> list[dict[str, Any]]:
    """`ndogo serve --workers W` under each concurrency level; stopped with SIGTERM at the end."""
    import psutil

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "ndogo", "serve", args.bundle, "--port", str(port),
                             "--workers", str(workers), "--threads", "1", "--max-batch", str(args.max_batch),
                             "--max-wait-ms", str(args.max_wait_ms)],
                            stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    rows = []
    try:
        wait_ready(url, proc, 180)
        parent = psutil.Process(proc.pid)
        server = [parent, *parent.children(recursive=True)]
        for c in (int(x) for x in args.clients.split(",")):
            asyncio.run(load(url, texts, c, min(20, args.requests), 10))  # warm-up, not recorded
            row = asyncio.run(load(url, texts, c, args.requests, args.seconds, server))
            rows.append({"workers": workers, **row})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("--data", default="../shared/data/masakhaner")
    parser.add_argument("--lang", default="luo")
    parser.add_argument("--workers", default="1,2", help="worker counts to serve with, one after the other")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--requests", type=int, default=600, help="most requests per concurrency level")
    parser.add_argument("--seconds", type=float, default=40, help="most seconds per concurrency level")
    parser.add_argument("--bare-seconds", type=float, default=15, help="seconds of each bare-model mode; 0: none")
    parser.add_argument("--max-wait-ms", type=float, default=5)
    parser.add_argument("--max-batch", type=int, default=4, help="the server's largest micro-batch (its default)")
    parser.add_argument("--lock", default="/tmp/ndogo-bench.lock")
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args()
    texts = sentences(args.data, args.lang, 200)
    rows: list[dict[str, Any]] = []
    with bench_lock(args.lock):
        if args.bare_seconds > 0:
            rows += [{"workers": "", **row} for row in bare(args.bundle, texts, args.bare_seconds)]
        for workers in (int(x) for x in args.workers.split(",")):
            rows += run_server(args, workers, texts)
    b32 = next((r["throughput_per_s"] for r in rows if r["mode"] == "bare-b32"), None)
    one = {r["clients"]: r["throughput_per_s"] for r in rows if r["workers"] == 1}
    for row in rows:
        row["server_max_batch"] = args.max_batch if row["clients"] else ""
        row["vs_bare_b32"] = round(row["throughput_per_s"] / b32, 3) if b32 else ""
        base = one.get(row["clients"]) if row["workers"] not in ("", 1) else None
        row["vs_1_worker"] = round(row["throughput_per_s"] / base, 3) if base else ""
        print(json.dumps(row))
    for row in rows:
        if row["vs_1_worker"] != "":
            print(f"{row['workers']} workers, {row['clients']} clients: {row['vs_1_worker']}x the throughput of "
                  f"1 worker, p99 {row['p99_ms']} ms; the load generator took {row['loadgen_cores']} of a core "
                  f"({row['loadgen_cpu_ms_per_request']} ms CPU a request), the server {row['server_cores']} cores",
                  flush=True)
    if args.csv:
        from ndogo.metrics.perf import cpu_model

        machine = {"cpu": cpu_model(), "cores": os.cpu_count()}  # a timing means nothing without its machine
        rows = [{**row, **machine} for row in rows]
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        fields = list(dict.fromkeys(key for row in rows for key in row))
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, restval="")
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
