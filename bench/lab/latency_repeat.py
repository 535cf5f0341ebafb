"""Is `ndogo evaluate`'s speed measurement repeatable? Measure the same model twice, in two processes.

Every compression result is compared on latency_ms_b1 and throughput_b32, so two
measurements of one model on a quiet machine must agree (target: within 10%).

    python bench/lab/latency_repeat.py runs/minilm-hau --data ../shared/data/masakhaner --lang hau \
        --out docs/bench/latency_repeat.md
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path


def measure_once(run: str, data: str, lang: str, threads: int | None) -> dict:
    cmd = [sys.executable, "-m", "ndogo", "evaluate", run, "--data", data, "--lang", lang, "--json"]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out[out.index("{"):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--data", required=True)
    parser.add_argument("--lang", required=True)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="Also write the markdown table here.")
    args = parser.parse_args()
    rows = [measure_once(args.run, args.data, args.lang, args.threads) for _ in range(args.repeats)]
    lat = [r["latency_ms_b1"] for r in rows]
    thr = [r["throughput_b32"] for r in rows]
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, threads {rows[0]['threads']}, "
        f"model {args.run}, {args.lang} test (first {rows[0]['latency_sentences']} sentences)",
        "",
        "| measurement | latency_ms_b1 | throughput_b32 (sent/s) | test F1 |",
        "|---|---|---|---|",
        *[f"| {i + 1} | {r['latency_ms_b1']:.2f} | {r['throughput_b32']:.1f} | {r['f1']:.4f} |"
          for i, r in enumerate(rows)],
        f"| max/min | {max(lat) / min(lat):.3f} | {max(thr) / min(thr):.3f} | |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
