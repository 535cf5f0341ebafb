"""Cold start and peak memory of an ONNX bundle: the torch-free runtime against the PyTorch path, in one run.

Each measurement is a fresh Python process that imports ndogo, loads the bundle
(`ndogo.load(bundle, threads=1)`, which picks the torch-free runtime for ONNX
kinds, or `runtime="torch"`) and tags one sentence. Cold start is the wall time
from starting the process to the first prediction's entities (interpreter start,
imports, session creation, first call); peak RSS is the child's own maximum
resident set. The two paths alternate so the machine's load falls on both alike;
one warm-up pair (not recorded) fills the page cache. The timing lock is held
throughout so no other timing of this machine's jobs overlaps it.

    nice -n 19 .venv/bin/python bench/runtime_cold.py BUNDLE --repeats 5 --csv docs/bench/runtime-cold.csv
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHILD = """
import json, resource, sys
import ndogo
predictor = ndogo.load(sys.argv[1], threads=1, runtime=sys.argv[2])
found = predictor.predict("Musa Aliyu ya je Kano ranar Litinin.")
print(json.dumps({"entities": len(found[0]), "type": type(predictor).__name__,
                  "torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)
"""
PATHS = {"torch-free": "auto", "torch": "torch"}


@contextmanager
def bench_lock(path: str) -> Any:
    """Hold the machine's timing lock (flock), as the sweeps do while they time."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def one(bundle: str, runtime: str, timeout: float) -> dict[str, Any]:
    """Start a process, wait for its first prediction; cold start seconds and the child's report."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, bundle, runtime], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline() if proc.stdout else ""
    seconds = time.perf_counter() - t0
    proc.wait(timeout)
    if proc.returncode != 0 or not line:
        raise SystemExit(f"{runtime}: the child failed (exit {proc.returncode})")
    return {"cold_start_s": seconds, **json.loads(line)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lock", default="/tmp/ndogo-bench.lock")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in PATHS}
    with bench_lock(args.lock):
        for runtime in PATHS.values():  # warm-up: page cache, not recorded
            one(args.bundle, runtime, args.timeout)
        for _ in range(args.repeats):
            for name, runtime in PATHS.items():
                results[name].append(one(args.bundle, runtime, args.timeout))
    rows = []
    for name, runs in results.items():
        cold = [r["cold_start_s"] for r in runs]
        rss = [r["peak_rss_mb"] for r in runs]
        rows.append({"path": name, "runs": len(runs), "cold_start_s_median": round(statistics.median(cold), 3),
                     "cold_start_s_min": round(min(cold), 3), "cold_start_s_max": round(max(cold), 3),
                     "peak_rss_mb_median": round(statistics.median(rss), 1), "peak_rss_mb_max": round(max(rss), 1),
                     "imports_torch": runs[0]["torch"], "imports_transformers": runs[0]["transformers"],
                     "predictor": runs[0]["type"], "entities": runs[0]["entities"]})
    for row in rows:
        print(json.dumps(row))
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
