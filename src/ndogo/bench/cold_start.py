"""Cold start and peak memory of a bundle: the torch-free runtime against the PyTorch path, in one run.

Each measurement is a fresh Python process that imports ndogo, loads the bundle
(`ndogo.load(bundle, threads=1)`, which picks the torch-free runtime for ONNX kinds, or
`runtime="torch"`) and tags one sentence. Cold start is the wall time from starting the
process to the first prediction's entities (interpreter start, imports, session creation,
first call); peak RSS is the child's own maximum resident set. The two paths alternate so the
machine's load falls on both alike; one warm-up pair (not recorded) fills the page cache. The
timing lock is held throughout so no other timing on this machine overlaps it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ndogo.bench import BENCH_LOCK, machine

# Peak RSS is the process's own high-water mark (VmHWM): getrusage's ru_maxrss survives exec on Linux, so
# a child of a parent that has imported torch would report the parent's memory as its own.
CHILD = """
import json, resource, sys
import ndogo
predictor = ndogo.load(sys.argv[1], threads=1, runtime=sys.argv[2])
found = predictor.predict(sys.argv[3])
try:
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"entities": len(found[0]), "type": type(predictor).__name__,
                  "torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules,
                  "peak_rss_mb": peak}), flush=True)
"""
PATHS = {"torch-free": "auto", "torch": "torch"}
SENTENCE = "Musa Aliyu ya je Kano ranar Litinin."


def one(bundle: str | Path, runtime: str, timeout: float, text: str = SENTENCE) -> dict[str, Any]:
    """Start a process, wait for its first prediction; cold start seconds and the child's report."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: a chatty child never blocks on it
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(bundle), runtime, text], stdout=subprocess.PIPE,
                                stderr=log, text=True, env=env)
        line = proc.stdout.readline() if proc.stdout else ""
        seconds = time.perf_counter() - t0
        try:
            proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise ValueError(f"{bundle}: the {runtime} path did not exit within {timeout:.0f} s") from None
        log.seek(0)
        err = log.read()
    if proc.returncode != 0 or not line:
        last = (err.strip().splitlines() or ["no output"])[-1]
        raise ValueError(f"{bundle}: loading it on the {runtime} path failed (exit {proc.returncode}): {last}")
    return {"cold_start_s": seconds, **json.loads(line)}


def cold_start(bundle: str | Path, repeats: int = 5, timeout: float = 300, lock: str | Path | None = BENCH_LOCK,
               text: str = SENTENCE) -> list[dict[str, Any]]:
    """One row per path (torch-free, torch): cold start and peak RSS, median, min and max over `repeats`.

    The columns of docs/bench/runtime-cold.csv, then the machine (cpu, cores).
    """
    from contextlib import nullcontext

    from ndogo.locks import file_lock

    if not Path(bundle).is_dir():
        raise FileNotFoundError(2, "No such directory", str(bundle))
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in PATHS}
    with file_lock(lock) if lock else nullcontext():
        for runtime in PATHS.values():  # warm-up: page cache, not recorded
            one(bundle, runtime, timeout, text)
        for _ in range(repeats):
            for name, runtime in PATHS.items():
                results[name].append(one(bundle, runtime, timeout, text))
    rows = []
    for name, runs in results.items():
        cold = [r["cold_start_s"] for r in runs]
        rss = [r["peak_rss_mb"] for r in runs]
        rows.append({"path": name, "runs": len(runs), "cold_start_s_median": round(statistics.median(cold), 3),
                     "cold_start_s_min": round(min(cold), 3), "cold_start_s_max": round(max(cold), 3),
                     "peak_rss_mb_median": round(statistics.median(rss), 1), "peak_rss_mb_max": round(max(rss), 1),
                     "imports_torch": runs[0]["torch"], "imports_transformers": runs[0]["transformers"],
                     "predictor": runs[0]["type"], "entities": runs[0]["entities"], **machine()})
    return rows
