"""Compressed models against their references, side by side: F1, parameters, size and speed as ratios.

Students against their teachers (distillation), structured-pruned models against the dense
model they came from (pruning), sparse files against dense ones: any model ndogo saved,
against any other. Each row names a language, a label, a model and its reference:

    python bench/compare.py --data ../shared/data/masakhaner --work runs/bench/students \\
        --out docs/bench/students.md \\
        --row "hau|6->3 agnostic|runs/distill/minilm-l3-hau|runs/minilm-hau" \\
        --row "hau|mini half|runs/distill/mini-hau-half|runs/pretrain/mini-hau"

Measured exactly as `ndogo evaluate` does, each model in a fresh process (so one model's
thread pools and memory never touch another's): test-set F1, size on disk, parameters
(F1 once, at 1 thread, safe on a busy machine); then latency per sentence at batch 1 and
sentences/s at batch 32, `--repeats` times in alternating order (model, reference,
reference, model, ...), and the median of the repeats is reported. Timing wants the
machine to itself; on a shared machine, run it under `flock /tmp/ndogo-bench.lock nice -n -10`
and pass `--autogroup-nice -10`: with Linux's autogroup scheduling (on by default) `nice` only
ranks processes inside one session, so a job started with `setsid` gets an equal share of the CPU
whatever its nice value; the session's autogroup priority is what ranks it against them.
Resumable: every measurement is cached as JSON under --work and reused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MEASURE = HERE / "lab" / "quantize.py"  # its `measure` subcommand: one model, one part, in a fresh process
sys.path.insert(0, str(MEASURE.parent))

from quantize import cpu_name  # noqa: E402


def _key(model: str, lang: str, part: str) -> str:
    digest = hashlib.sha1(str(Path(model).resolve()).encode()).hexdigest()[:10]
    return f"{Path(model).name}-{digest}-{lang}-{part}"


def measured(model: str, lang: str, part: str, work: Path, data: str, threads: int) -> dict[str, Any]:
    """One cached measurement (`part` "f1", or "speed<i>" for the i-th timing repeat) in a fresh process."""
    path = work / f"{_key(model, lang, part)}.json"
    if not path.is_file():
        work.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(MEASURE), "measure", model, "--lang", lang, "--data", data,
               "--threads", str(threads), "--out", str(path), "--part", "f1" if part == "f1" else "speed"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"measuring {part} of {model} ({lang}) failed:\n{done.stderr[-3000:]}")
    return json.loads(path.read_text())


def set_autogroup_nice(value: int) -> None:
    """Rank this session's processes against other sessions (what `nice` alone cannot do under autogroup)."""
    path = Path("/proc/self/autogroup")
    try:
        path.write_text(str(value))
    except OSError as err:
        print(f"warning: could not set {path} to {value} ({err}); timings may share the CPU", file=sys.stderr)
    else:
        print(f"{path.read_text().strip()}", file=sys.stderr)


def parse_row(text: str) -> dict[str, str]:
    parts = text.split("|")
    if len(parts) != 4 or not all(p.strip() for p in parts):
        raise SystemExit(f"--row {text!r}: expected LANG|LABEL|MODEL|REFERENCE")
    lang, label, model, ref = (p.strip() for p in parts)
    for path in (model, ref):
        if not (Path(path) / "ndogo.json").is_file() and not (Path(path) / "config.json").is_file():
            raise SystemExit(f"--row {text!r}: {path} is not a saved model directory")
    return {"lang": lang, "label": label, "model": model, "ref": ref}


def compare(row: dict[str, str], work: Path, data: str, threads: int, repeats: int) -> dict[str, Any]:
    """F1, size and parameters of model and reference, then alternating timing repeats, as ratios."""
    lang, model, ref = row["lang"], row["model"], row["ref"]
    f1_m, f1_r = measured(model, lang, "f1", work, data, 1), measured(ref, lang, "f1", work, data, 1)
    lat: dict[str, list[float]] = {model: [], ref: []}
    thr: dict[str, list[float]] = {model: [], ref: []}
    for i in range(repeats):
        order = (model, ref) if i % 2 == 0 else (ref, model)
        for m in order:
            # the reference's i-th repeat is shared by every row that compares against it
            t = measured(m, lang, f"speed{i}", work, data, threads)
            lat[m].append(t["latency_ms_b1"])
            thr[m].append(t["throughput_b32"])
    med = {m: (statistics.median(lat[m]), statistics.median(thr[m])) for m in (model, ref)}
    return {
        **row,
        "f1": f1_m["f1"], "ref_f1": f1_r["f1"], "delta_f1_pts": round(100 * (f1_m["f1"] - f1_r["f1"]), 2),
        "params": f1_m["params"], "ref_params": f1_r["params"],
        "nonzero_params": f1_m.get("nonzero_params"), "sparsity": f1_m.get("sparsity"),
        "size_bytes": f1_m["size_bytes"], "ref_size_bytes": f1_r["size_bytes"],
        "latency_ms_b1": round(med[model][0], 3), "ref_latency_ms_b1": round(med[ref][0], 3),
        "throughput_b32": round(med[model][1], 2), "ref_throughput_b32": round(med[ref][1], 2),
        "speedup_b1": round(med[ref][0] / med[model][0], 3), "speedup_b32": round(med[model][1] / med[ref][1], 3),
        "latency_spread_b1": round(max(lat[model]) / min(lat[model]), 3), "repeats": repeats, "threads": threads,
    }


def markdown(rows: list[dict[str, Any]], command: str, threads: int, repeats: int) -> str:
    lines = [
        f"Machine: {cpu_name()}, {threads} thread(s), torch in {sys.version.split()[0]} "
        f"({platform.machine()}); latency = median of {repeats} fresh-process repeats (alternating order), "
        "each itself a median over the test sentences; F1 on the full test set.",
        "",
        f"Command: `{command}`",
        "",
        "| lang | model | reference | params (vs ref) | size MB (ref / model) | test F1 | ref F1 | ΔF1 (pts) "
        "| b1 ms (ref) | faster b1 | faster b32 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['lang']} | {r['label']} (`{r['model']}`) | `{r['ref']}` "
            f"| {r['params'] / 1e6:.2f}M ({100 * (r['params'] / r['ref_params'] - 1):+.1f}%) "
            f"| {r['size_bytes'] / 1e6:.1f} ({r['ref_size_bytes'] / r['size_bytes']:.2f}× smaller) "
            f"| {100 * r['f1']:.2f} | {100 * r['ref_f1']:.2f} | {r['delta_f1_pts']:+.2f} "
            f"| {r['latency_ms_b1']:.2f} ({r['ref_latency_ms_b1']:.2f}) | {r['speedup_b1']:.2f}× "
            f"| {r['speedup_b32']:.2f}× |")
    labels = sorted({r["label"] for r in rows}, key=[r["label"] for r in rows].index)
    for label in labels:
        group = [r for r in rows if r["label"] == label]
        if len(group) > 1:
            lines.append(
                f"| average ({len(group)}) | {label} | | | | | | "
                f"{statistics.mean(r['delta_f1_pts'] for r in group):+.2f} | | "
                f"{statistics.mean(r['speedup_b1'] for r in group):.2f}× "
                f"| {statistics.mean(r['speedup_b32'] for r in group):.2f}× |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--row", action="append", required=True, help="LANG|LABEL|MODEL|REFERENCE (repeatable)")
    parser.add_argument("--data", required=True, help="MasakhaNER-layout folder (the test split is used)")
    parser.add_argument("--work", type=Path, required=True, help="cache of measurements (resumable)")
    parser.add_argument("--out", type=Path, help="write the markdown table here (and a .csv beside it)")
    parser.add_argument("--threads", type=int, default=1, help="threads for timing (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats per model (median; default 3)")
    parser.add_argument("--f1-only", action="store_true", help="measure F1/size/params only (busy machine)")
    parser.add_argument("--autogroup-nice", type=int, help="set this session's autogroup nice (-20..19; root)")
    args = parser.parse_args(argv)
    if args.autogroup_nice is not None:
        set_autogroup_nice(args.autogroup_nice)
    rows = [parse_row(r) for r in args.row]
    if args.f1_only:
        for r in rows:
            for m in (r["model"], r["ref"]):
                measured(m, r["lang"], "f1", args.work, args.data, 1)
        print(f"F1 measured for {len(rows)} rows; timing not run (--f1-only)")
        return
    results = []
    for r in rows:
        results.append(compare(r, args.work, args.data, args.threads, args.repeats))
        print(f"{r['lang']} {r['label']}: ΔF1 {results[-1]['delta_f1_pts']:+.2f}, "
              f"{results[-1]['speedup_b1']:.2f}× b1, {results[-1]['speedup_b32']:.2f}× b32", flush=True)
    command = "python bench/compare.py " + " ".join(
        f'"{a}"' if "|" in a or " " in a else a for a in argv)
    text = markdown(results, command, args.threads, args.repeats)
    print(text)
    if args.out:
        import csv

        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        with args.out.with_suffix(".csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(results[0]))
            writer.writeheader()
            writer.writerows(results)


if __name__ == "__main__":
    main()
