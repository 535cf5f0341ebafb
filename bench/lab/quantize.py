"""Side-by-side benchmark of every post-training quantization against fp32, per language.

For each fine-tuned baseline runs/minilm-<lang>, this quantizes it with every
method (`ndogo quantize`), exports an fp32 ONNX model as the ONNX reference, and
measures each variant exactly as `ndogo evaluate` does (test-set F1 and size on
disk at 1 thread; then median latency per sentence at batch 1 and sentences/s at
batch 32 on the same test sentences), each in a fresh process so one variant's
memory or thread pools never touch another's.
It then writes a CSV of every row and a markdown table of changes against fp32
PyTorch beside the study's figures, and checks the issue's target for the
fastest int8 path. Resumable: quantized models and measured rows already on disk
are reused, so an interrupted run continues where it stopped.

Run it alone on the machine (timings are only comparable on a quiet CPU):

    flock /tmp/ndogo-bench.lock python bench/lab/quantize.py --threads 2

F1 needs no quiet machine: `--f1-only` builds every variant and scores it
first, so the timed run later only times.

Example (one language, two methods, for a quick look):

    python bench/lab/quantize.py --langs hau --methods onnx-int8,dynamic-int8 --threads 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ndogo.report.study import DYNAMIC_INT8, LLM_INT8

ROOT = Path(__file__).resolve().parents[2]
# The study's averages (AfriBERTa on MasakhaNER) that the table sets our numbers beside.
STUDY = {claim.method: {"size_red": claim.size_reduction, "time_red": claim.time_reduction,
                        "f1_change": claim.f1_change} for claim in (LLM_INT8, DYNAMIC_INT8)}
INT8_METHODS = ("dynamic-int8", "dynamic-int8+emb8", "torchao-int8", "llm-int8", "onnx-int8", "onnx-int8-static")
# "<method>+emb8": the method with int8 embedding tables too (quant_config(embeddings="int8")).
EMB8 = "emb8"
DEFAULT_METHODS = ("onnx-fp32", "fp16", "bf16", "dynamic-int8", "dynamic-int8+emb8", "torchao-int8", "llm-int8",
                   "int4-weight", "int8-embed", "onnx-int8", "onnx-int8-static")
from ndogo.metrics.perf import cpu_model as cpu_name  # noqa: E402  (one reader of /proc/cpuinfo)

TARGET = {"speedup_b1": 2.5, "size_red": 70.0, "f1_loss": 1.0}


def measure_one(run: str, lang: str, data: str, threads: int, out: str, part: str) -> None:
    """Measure one model in this process and write its row (the `measure` subcommand).

    part "f1": `evaluate` without timing (test-set F1 and size; safe on a busy CPU);
    part "speed": the timing half of `evaluate` (`ndogo.metrics.perf.measure`) on
    the same test sentences, which needs the machine to itself.
    """
    import torch

    from ndogo.console import quiet_libraries
    from ndogo.evaluate import evaluate

    quiet_libraries()
    torch.manual_seed(0)
    if part == "f1":
        row = evaluate(run, data, lang, speed=False, threads=threads)
    else:
        from ndogo.data.corpus import load_corpus
        from ndogo.metrics.perf import measure, peak_rss_mb
        from ndogo.models.runner import load_runner
        from ndogo.models.windowing import encode_sentences

        torch.set_num_threads(threads)
        runner = load_runner(run)
        words = [s.tokens for s in load_corpus(data, lang, ("test",)).splits["test"]]
        row = measure(runner.forward, encode_sentences(runner.tokenizer, words, runner.max_length), runner.pad_id)
        row["peak_rss_mb"] = round(peak_rss_mb(), 1)
    Path(out).write_text(json.dumps(row, indent=2, ensure_ascii=False) + "\n")


def build_variant(lang: str, method: str, baseline: Path, work: Path, data: str) -> Path:
    """The model directory of one variant, quantized (or exported) now unless already on disk."""
    if method == "fp32":
        return baseline
    out = work / lang / method
    if (out / "ndogo.json").is_file():
        return out
    if method == "onnx-fp32":
        from ndogo.compress.export import export_onnx

        return export_onnx(baseline, out)
    from ndogo.compress.quantize import quant_config, quantize

    base_method, _, extra = method.partition("+")
    options: dict = {"embeddings": "int8"} if extra == EMB8 else {}
    if base_method == "onnx-int8-static":
        options.update(data=data, lang=lang)
    return quantize(baseline, out, quant_config(base_method, **options))


def _measured(part: str, lang: str, method: str, run: Path, work: Path, data: str, threads: int) -> dict[str, Any]:
    path = work / lang / f"{method}.{part}.json"
    if not path.is_file():
        cmd = [sys.executable, __file__, "measure", str(run), "--lang", lang, "--data", data,
               "--threads", str(threads), "--out", str(path), "--part", part]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"measuring {part} of {run} failed:\n{done.stderr[-3000:]}")
    return json.loads(path.read_text())


def measured_row(lang: str, method: str, run: Path, work: Path, data: str, threads: int,
                 f1_only: bool = False) -> dict[str, Any] | None:
    """One variant's row: F1 at 1 thread (cached), then speed at `threads` (cached); None if f1_only."""
    scored = _measured("f1", lang, method, run, work, data, 1)
    if f1_only:
        return None
    timed = _measured("speed", lang, method, run, work, data, threads)
    return {
        "lang": lang, "method": method, "model": str(run), "kind": scored["kind"], "f1": scored["f1"],
        "size_bytes": scored["size_bytes"], "latency_ms_b1": timed["latency_ms_b1"],
        "ms_per_sentence_b32": round(1000 / timed["throughput_b32"], 3), "throughput_b32": timed["throughput_b32"],
        "threads": timed["threads"], "peak_rss_mb": timed["peak_rss_mb"],
    }


def add_changes(rows: list[dict[str, Any]]) -> None:
    """Changes of each row against the fp32 PyTorch row of its language (F1 in points, others in %)."""
    base = {r["lang"]: r for r in rows if r["method"] == "fp32"}
    for r in rows:
        b = base[r["lang"]]
        r["f1_change"] = round(100 * (r["f1"] - b["f1"]), 2)
        r["size_red"] = round(100 * (1 - r["size_bytes"] / b["size_bytes"]), 2)
        r["b1_red"] = round(100 * (1 - r["latency_ms_b1"] / b["latency_ms_b1"]), 1)
        r["b32_red"] = round(100 * (1 - r["ms_per_sentence_b32"] / b["ms_per_sentence_b32"]), 1)
        r["speedup_b1"] = round(b["latency_ms_b1"] / r["latency_ms_b1"], 2)
        r["speedup_b32"] = round(b["ms_per_sentence_b32"] / r["ms_per_sentence_b32"], 2)


def averages(rows: list[dict[str, Any]], methods: list[str]) -> list[dict[str, Any]]:
    out = []
    for m in methods:
        sel = [r for r in rows if r["method"] == m]
        avg = {k: statistics.mean(r[k] for r in sel) for k in
               ("f1_change", "size_red", "b1_red", "b32_red", "speedup_b1", "speedup_b32")}
        out.append({"method": m, "langs": len(sel), **avg})
    return out


def fmt_study(method: str, key: str) -> str:
    value = STUDY.get(method, {}).get(key)
    return "" if value is None else f"{value:+.2f}" if key == "f1_change" else f"{value:.1f}"


def markdown(rows: list[dict[str, Any]], avgs: list[dict[str, Any]], command: str, threads: int) -> str:
    import onnxruntime
    import torch

    lines = [
        f"Machine: {cpu_name()} ({os.cpu_count()} cores), {threads} threads for torch and ONNX Runtime; "
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, Python {platform.python_version()}.",
        "",
        f"Command: `{command}`",
        "",
        "Per language (F1 on the MasakhaNER 1.0 test set; b1 = median ms per sentence at batch 1 over the "
        "first 200 test sentences, 3 repeats; b32 = ms per sentence at batch 32; reductions against fp32 PyTorch):",
        "",
        "| lang | method | F1 | ΔF1 (pts) | size MB | size −% | b1 ms | b1 −% | ×b1 | b32 ms | b32 −% |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['lang']} | {r['method']} | {100 * r['f1']:.2f} | {r['f1_change']:+.2f} | "
            f"{r['size_bytes'] / 1e6:.1f} | {r['size_red']:.1f} | {r['latency_ms_b1']:.2f} | {r['b1_red']:.1f} | "
            f"{r['speedup_b1']:.2f} | {r['ms_per_sentence_b32']:.2f} | {r['b32_red']:.1f} |")
    lines += [
        "",
        "Average over the languages, beside the study (AfriBERTa; its time reduction is one figure):",
        "",
        "| method | ΔF1 (pts) | study ΔF1 | size −% | study size −% | b1 −% | b32 −% | study time −% | ×b1 | ×b32 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for a in avgs:
        lines.append(
            f"| {a['method']} | {a['f1_change']:+.2f} | {fmt_study(a['method'], 'f1_change')} | "
            f"{a['size_red']:.1f} | {fmt_study(a['method'], 'size_red')} | {a['b1_red']:.1f} | {a['b32_red']:.1f} | "
            f"{fmt_study(a['method'], 'time_red')} | {a['speedup_b1']:.2f} | {a['speedup_b32']:.2f} |")
    int8 = [a for a in avgs if a["method"] in INT8_METHODS]
    if int8:
        best = max(int8, key=lambda a: a["speedup_b1"])
        speed, size, loss = best["speedup_b1"], best["size_red"], -best["f1_change"]
        checks = [
            ("speed-up at batch 1", speed, f"≥ {TARGET['speedup_b1']}×", speed >= TARGET["speedup_b1"]),
            ("size reduction", size, f"≥ {TARGET['size_red']}%", size >= TARGET["size_red"]),
            ("average F1 loss (pts)", loss, f"< {TARGET['f1_loss']}", loss < TARGET["f1_loss"]),
        ]
        lines += ["", f"Target for the fastest int8 path (**{best['method']}**, by average speed-up at batch 1):", "",
                  "| criterion | measured | target | met |", "|---|---:|---|---|"]
        lines += [f"| {name} | {value:.2f} | {goal} | {'yes' if ok else 'no'} |" for name, value, goal, ok in checks]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "measure":
        p = argparse.ArgumentParser(prog="bench/lab/quantize.py measure")
        p.add_argument("run")
        p.add_argument("--lang", required=True)
        p.add_argument("--data", required=True)
        p.add_argument("--threads", type=int, required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--part", choices=("f1", "speed"), required=True)
        a = p.parse_args(argv[1:])
        measure_one(a.run, a.lang, a.data, a.threads, a.out, a.part)
        return

    from ndogo.compress.quantize import METHODS
    from ndogo.console import quiet_libraries

    quiet_libraries()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--langs", default="hau,swa,yor", help="comma-separated; baselines are runs/minilm-<lang>")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help="comma-separated quantization methods, `<method>+emb8` adds int8 embeddings "
                        "(fp32 PyTorch is always measured)")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "masakhaner"))
    p.add_argument("--runs", default=str(ROOT / "runs"), help="folder holding minilm-<lang>")
    p.add_argument("--work", default=str(ROOT / "runs" / "quantize"), help="where variants and rows go")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--f1-only", action="store_true",
                   help="only build the variants and score F1 at 1 thread (no timing; may run while the CPU is busy)")
    a = p.parse_args(argv)
    langs = [x for x in a.langs.split(",") if x]
    methods = ["fp32"] + [m for m in a.methods.split(",") if m and m != "fp32"]
    unknown = [m for m in methods if m.partition("+")[0] not in ("fp32", "onnx-fp32", *METHODS)
               or m.partition("+")[2] not in ("", EMB8)]
    if unknown:
        sys.exit(f"error: unknown method(s) {', '.join(unknown)}")
    work = Path(a.work)
    rows = []
    with tqdm(total=len(langs) * len(methods), desc="variants", unit="model") as bar:
        for lang in langs:
            baseline = Path(a.runs) / f"minilm-{lang}"
            if not (baseline / "config.json").is_file():
                sys.exit(f"error: {baseline} is not a trained model directory")
            (work / lang).mkdir(parents=True, exist_ok=True)
            for method in methods:
                bar.set_postfix_str(f"{lang} {method}")
                run = build_variant(lang, method, baseline, work, a.data)
                row = measured_row(lang, method, run, work, a.data, a.threads, f1_only=a.f1_only)
                if row is not None:
                    rows.append(row)
                bar.update()
    if a.f1_only:
        return
    add_changes(rows)
    avgs = averages(rows, methods)
    command = "flock /tmp/ndogo-bench.lock python bench/lab/quantize.py " + " ".join(argv)
    with (work / "quantize.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (work / "quantize.md").write_text(markdown(rows, avgs, command.strip(), a.threads))
    print((work / "quantize.md").read_text())


if __name__ == "__main__":
    main()
