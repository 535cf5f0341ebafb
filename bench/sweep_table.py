"""One markdown table per sweep: every recipe against its language's baseline, as ratios.

`ndogo report` writes one table per metric; this prints them side by side (F1, ΔF1, size and
batch-1 latency with their ratios to the baseline, parameters), which is how docs/results.md
shows a sweep:

    python bench/sweep_table.py runs/sweeps/chained
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", type=Path, help="a sweep directory holding results.sqlite")
    args = parser.parse_args()
    con = sqlite3.connect(args.sweep / "results.sqlite")
    rows = [json.loads(r[0]) for r in con.execute("select row from cells where status = 'done'")]
    base = {(r["model"], r["lang"], r["seed"]): r for r in rows if r["recipe"] == "baseline"}
    recipes = list(dict.fromkeys(r["recipe"] for r in rows))
    print("| lang | recipe | dev F1 | Δdev | test F1 | ΔF1 (pts) | params | size MB | smaller | b1 ms | faster |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for lang in dict.fromkeys(r["lang"] for r in rows):
        for name in recipes:
            for r in (x for x in rows if x["lang"] == lang and x["recipe"] == name):
                b = base.get((r["model"], r["lang"], r["seed"]))
                if b is None:
                    continue
                dev = (f"{100 * r['dev_f1']:.2f} | {100 * (r['dev_f1'] - b['dev_f1']):+.2f}"
                       if r.get("dev_f1") is not None and b.get("dev_f1") is not None else "– | –")
                print(f"| {lang} | {name} | {dev} | {100 * r['f1']:.2f} | {100 * (r['f1'] - b['f1']):+.2f} | "
                      f"{r['params'] / 1e6:.1f}M | {r['size_bytes'] / 1e6:.1f} | "
                      f"{b['size_bytes'] / r['size_bytes']:.2f}× | "
                      f"{r['latency_ms_b1']:.2f} | {b['latency_ms_b1'] / r['latency_ms_b1']:.2f}× |")


if __name__ == "__main__":
    main()
