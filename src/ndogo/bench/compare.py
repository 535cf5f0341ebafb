"""Compressed models against their references, side by side: F1, parameters, size and speed as ratios.

Students against their teachers (distillation), structured-pruned models against the dense
model they came from, sparse files against dense ones: any model ndogo saved, against any
other, several pairs in one table. Each pair is measured as `ndogo evaluate` measures, every
measurement in a fresh process (so one model's thread pools and memory never touch
another's): test-set F1, size on disk and parameters once, at one thread (safe on a busy
machine); then `speed_row`'s batch-1 latency and batch-32 throughput `repeats` times in
alternating order (model, reference, reference, model, ...), and the median is reported.
Every measurement is cached as JSON under `work`, so an interrupted table resumes, and a
reference shared by several pairs is timed once per repeat.
"""

from __future__ import annotations

import hashlib
import json
import platform
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ndogo.bench import machine

# One measurement in a fresh process: `f1` scores without timing, `speed` times without scoring.
MEASURE = """
import json, sys
from ndogo.console import quiet_libraries
quiet_libraries()
import torch
torch.manual_seed(0)
args = json.loads(sys.argv[1])
part = args.pop("part")
if part == "f1":
    from ndogo.evaluate import evaluate
    row = evaluate(args["run"], args["data"], args["lang"], speed=False, threads=1, device=args["device"])
else:
    from ndogo.evaluate import speed_row
    row = speed_row(**args)
print(json.dumps(row))
"""


@dataclass(frozen=True)
class Pair:
    """One line of the table: a model and the reference its ratios are against, on one language."""

    lang: str
    label: str
    model: str
    ref: str


def parse_pair(text: str) -> Pair:
    """`LANG|LABEL|MODEL|REFERENCE`, both paths saved model directories."""
    parts = text.split("|")
    if len(parts) != 4 or not all(p.strip() for p in parts):
        raise ValueError(f"--row {text!r}: expected LANG|LABEL|MODEL|REFERENCE")
    lang, label, model, ref = (p.strip() for p in parts)
    for path in (model, ref):
        if not (Path(path) / "ndogo.json").is_file() and not (Path(path) / "config.json").is_file():
            raise ValueError(f"--row {text!r}: {path} is not a saved model directory")
    return Pair(lang, label, model, ref)


def _key(model: str, lang: str, part: str) -> str:
    digest = hashlib.sha1(str(Path(model).resolve()).encode()).hexdigest()[:10]
    return f"{Path(model).name}-{digest}-{lang}-{part}"


def measured(model: str, lang: str, part: str, work: Path, data: str | None, threads: int = 1, repeat: int = 0,
             sample: int = 200, device: str = "cpu") -> dict[str, Any]:
    """One cached measurement (`part` "f1" or "speed", the latter once per `repeat`), made in a fresh process."""
    name = "f1" if part == "f1" else f"timing{repeat}-t{threads}-n{sample}-{device.replace(':', '')}"
    path = work / f"{_key(model, lang, name)}.json"
    if not path.is_file():
        work.mkdir(parents=True, exist_ok=True)
        args: dict[str, Any] = {"part": part, "run": model, "data": data, "lang": lang, "device": device}
        if part != "f1":
            args.update(split="test", sample=sample, threads=threads)
        done = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(args)], capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ValueError(f"{model}: measuring its {'F1' if part == 'f1' else 'speed'} on {lang} failed: {last}")
        path.write_text(done.stdout.strip().splitlines()[-1] + "\n")
    return json.loads(path.read_text())


def compare(pair: Pair, work: Path, data: str | None, threads: int = 1, repeats: int = 3, sample: int = 200,
            device: str = "cpu") -> dict[str, Any]:
    """F1, size and parameters of model and reference, then alternating timing repeats, as ratios.

    The columns of docs/bench/*-students.csv and structured-pruning.csv, then the machine.
    """
    lang, model, ref = pair.lang, pair.model, pair.ref
    f1_m, f1_r = measured(model, lang, "f1", work, data, device=device), measured(ref, lang, "f1", work, data,
                                                                                 device=device)
    lat: dict[str, list[float]] = {model: [], ref: []}
    thr: dict[str, list[float]] = {model: [], ref: []}
    for i in range(repeats):
        for m in ((model, ref) if i % 2 == 0 else (ref, model)):
            t = measured(m, lang, "speed", work, data, threads, i, sample, device)
            lat[m].append(t["latency_ms_b1"])
            thr[m].append(t["throughput_b32"])
    med = {m: (statistics.median(lat[m]), statistics.median(thr[m])) for m in (model, ref)}
    return {
        "lang": lang, "label": pair.label, "model": model, "ref": ref,
        "f1": f1_m["f1"], "ref_f1": f1_r["f1"], "delta_f1_pts": round(100 * (f1_m["f1"] - f1_r["f1"]), 2),
        "params": f1_m["params"], "ref_params": f1_r["params"],
        "nonzero_params": f1_m.get("nonzero_params"), "sparsity": f1_m.get("sparsity"),
        "size_bytes": f1_m["size_bytes"], "ref_size_bytes": f1_r["size_bytes"],
        "latency_ms_b1": round(med[model][0], 3), "ref_latency_ms_b1": round(med[ref][0], 3),
        "throughput_b32": round(med[model][1], 2), "ref_throughput_b32": round(med[ref][1], 2),
        "speedup_b1": round(med[ref][0] / med[model][0], 3), "speedup_b32": round(med[model][1] / med[ref][1], 3),
        "latency_spread_b1": round(max(lat[model]) / min(lat[model]), 3), "repeats": repeats, "threads": threads,
        **machine(),
    }


def f1_only(pairs: list[Pair], work: Path, data: str | None, device: str = "cpu") -> None:
    """Score every model and reference (cached), no timing: the half that a busy machine can do."""
    for p in pairs:
        for m in (p.model, p.ref):
            measured(m, p.lang, "f1", work, data, device=device)


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    """The table as docs/bench/*-students.md show it: one line per pair, and a mean per label over languages."""
    first = rows[0]
    lines = [
        f"Machine: {first['cpu']} ({first['cores']} cores), {first['threads']} thread(s), Python "
        f"{platform.python_version()} ({platform.machine()}); latency = median of {first['repeats']} fresh-process "
        "repeats (alternating order), each itself a median over the test sentences timed; F1 on the full test set.",
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
    for label in dict.fromkeys(r["label"] for r in rows):
        group = [r for r in rows if r["label"] == label]
        if len(group) > 1:
            lines.append(
                f"| average ({len(group)}) | {label} | | | | | | "
                f"{statistics.mean(r['delta_f1_pts'] for r in group):+.2f} | | "
                f"{statistics.mean(r['speedup_b1'] for r in group):.2f}× "
                f"| {statistics.mean(r['speedup_b32'] for r in group):.2f}× |")
    return "\n".join(lines) + "\n"
