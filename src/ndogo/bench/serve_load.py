"""A bounded load test of `ndogo serve`: throughput and latency at several concurrency levels and worker counts.

For each worker count W, `ndogo serve BUNDLE --workers W --threads 1` is started on a free
loopback port (each worker one model thread); for each concurrency C, C closed-loop clients
each send one text per request to the bundle's endpoint (`/v1/entities`, `/v1/tags` or
`/v1/labels`), back to back, until `requests` are done or `seconds` have passed, whichever
comes first; the server is stopped with SIGTERM before the next W
(and killed if it does not exit). Against it, in the same run, the bare model: the same
bundle loaded in this process (`ndogo.load`, one thread), raw text to what it predicts
(entities, tags or a label), one at a time (batch 1) and 32 at a time (batch 32). Everything
is loopback, bounded in requests and time, and stops by itself.

The clients (httpx, asyncio, one thread) run on the same machine as the server and take CPU
from it; that is part of what is measured, and each row says how much: the load generator's
CPU seconds per request and in cores (getrusage of this process over the level), the
server's (psutil, every worker included), and how the requests split over the workers (the
X-Ndogo-Worker header). Rows with W > 1 give their throughput against W = 1 at the same C
(vs_1_worker). The timing lock is held throughout so no other timing on this machine overlaps it.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ndogo.bench import BENCH_LOCK, machine

Progress = Callable[[str], None]


def free_port() -> int:
    """A TCP port nobody listens on now, on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sentences(bundle: str | Path, data: str | None, lang: str, n: int, split: str = "test") -> list[str]:
    """The first `n` texts of a split as raw text, what a user would send, read as the bundle's task reads them."""
    from ndogo.bench import corpus_texts

    return corpus_texts(bundle, data, lang, split, "the load test")[2][:n]


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile (0-1) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bare(bundle: str | Path, texts: list[str], seconds: float) -> list[dict[str, Any]]:
    """The model without the server: texts/s at batch 1 and at batch 32, raw text to its predictions."""
    from ndogo.deploy import load

    predictor = load(bundle, threads=1)
    predictor.predict(texts[:32])
    rows = []
    for batch in (1, 32):
        done, calls, t0 = 0, [], time.perf_counter()
        while time.perf_counter() - t0 < seconds or not calls:
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
    """CPU seconds of every thread of this process: the clients' event loop."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def load(url: str, texts: list[str], clients: int, requests: int, seconds: float,
               server: list[Any] | None = None, endpoint: str = "/v1/entities") -> dict[str, Any]:
    """`clients` closed-loop clients posting to `url` + `endpoint` until `requests` are done or `seconds` pass."""
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
                answer = await http.post(endpoint, json={"text": text})
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


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    """Return once the server answers /healthz; a server that exits or never answers is an error."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ValueError(f"`ndogo serve` exited with {proc.returncode} before it was ready: {_last_line(log)}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise ValueError(f"`ndogo serve` did not answer /healthz within {timeout:.0f} s")


def run_server(bundle: str | Path, workers: int, texts: list[str], clients: Sequence[int], requests: int,
               seconds: float, max_batch: int, max_wait_ms: float, progress: Progress | None = None,
               warmup: int = 20) -> list[dict[str, Any]]:
    """`ndogo serve --workers W` under each concurrency level; stopped with SIGTERM at the end."""
    import psutil

    from ndogo.deploy.serve import endpoint_of

    port = free_port()
    url, endpoint = f"http://127.0.0.1:{port}", endpoint_of(bundle)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ndogo-serve-load-") as tmp:
        log = Path(tmp) / "serve.log"
        with log.open("w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "ndogo", "serve", str(bundle), "--port", str(port),
                                     "--workers", str(workers), "--threads", "1", "--max-batch", str(max_batch),
                                     "--max-wait-ms", str(max_wait_ms)],
                                    stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "OMP_NUM_THREADS": "1"})
        try:
            wait_ready(url, proc, log, 180)
            parent = psutil.Process(proc.pid)
            server = [parent, *parent.children(recursive=True)]
            for c in clients:
                asyncio.run(load(url, texts, c, min(warmup, requests), 10, endpoint=endpoint))  # warm-up, not recorded
                row = {"workers": workers, **asyncio.run(load(url, texts, c, requests, seconds, server, endpoint))}
                rows.append(row)
                if progress:
                    progress(f"{workers} worker(s), {c} client(s): {row['throughput_per_s']} requests/s, "
                             f"p99 {row['p99_ms']} ms")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return rows


def serve_load(bundle: str | Path, data: str | None, lang: str, workers: Sequence[int] = (1, 2),
               clients: Sequence[int] = (1, 8, 32), requests: int = 600, seconds: float = 40,
               bare_seconds: float = 15, max_batch: int = 4, max_wait_ms: float = 5,
               lock: str | Path | None = BENCH_LOCK, progress: Progress | None = None,
               warmup: int = 20) -> list[dict[str, Any]]:
    """Every row of the load test: the bare model's two, then one per worker count and concurrency level.

    Each row has the columns of docs/bench/serve-workers.csv: workers (empty for the bare
    model), mode, clients, requests, errors, seconds, throughput_per_s, p50_ms, p99_ms (of a
    request, or of one model call for the bare model), server_max_batch, vs_bare_b32, vs_1_worker,
    the load generator's and the server's CPU, requests_per_worker, and the machine (cpu, cores).
    """
    from contextlib import nullcontext

    from ndogo.locks import file_lock

    if not Path(bundle).is_dir():
        raise FileNotFoundError(2, "No such directory", str(bundle))
    texts = sentences(bundle, data, lang, 200)
    rows: list[dict[str, Any]] = []
    with file_lock(lock) if lock else nullcontext():
        if bare_seconds > 0:
            rows += [{"workers": "", **row} for row in bare(bundle, texts, bare_seconds)]
            if progress:
                progress(f"bare model: {rows[0]['throughput_per_s']} sentences/s at batch 1, "
                         f"{rows[1]['throughput_per_s']} at batch 32")
        for w in workers:
            rows += run_server(bundle, w, texts, clients, requests, seconds, max_batch, max_wait_ms, progress, warmup)
    b32 = next((r["throughput_per_s"] for r in rows if r["mode"] == "bare-b32"), None)
    one = {r["clients"]: r["throughput_per_s"] for r in rows if r["workers"] == 1}
    ordered = []
    for row in rows:
        base = one.get(row["clients"]) if row["workers"] not in ("", 1) else None
        ordered.append({
            **{k: row[k] for k in ("workers", "mode", "clients", "requests", "errors", "seconds", "throughput_per_s",
                                   "p50_ms", "p99_ms")},
            "server_max_batch": max_batch if row["clients"] else "",
            "vs_bare_b32": round(row["throughput_per_s"] / b32, 3) if b32 else "",
            "vs_1_worker": round(row["throughput_per_s"] / base, 3) if base else "",
            **{k: row.get(k, "") for k in ("loadgen_cpu_ms_per_request", "loadgen_cores", "server_cpu_ms_per_request",
                                           "server_cores", "requests_per_worker")},
            **machine()})
    return ordered
