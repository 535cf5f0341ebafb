"""The GPU check: fine-tune, distil, LLM.int8() and evaluate on the CPU and on a GPU, side by side.

On a machine with one CUDA GPU this fine-tunes `minilm` on hau for one epoch, distils a 3-layer
student from it (task distillation, one epoch), quantizes the fine-tuned model with LLM.int8()
(bitsandbytes), and evaluates all three on hau's test set. It runs the whole pipeline once per
device, then prints F1 and times for each. The GPU run uses bf16 autocast where the GPU has it
(fp16 with loss scaling where it does not), and LLM.int8() runs bitsandbytes' CUDA int8 matmul.
Each latency is timed after warm-up, with `torch.cuda.synchronize` around each timed forward on
the GPU. Sized for under 10 minutes on a 16-core machine with one GPU, most of it the CPU's half;
not yet run on a GPU (the session that wrote it had none).

    python bench/gpu_check.py --data ../shared/data/masakhaner --out /tmp/gpu-check

`--steps N` caps every training run at N optimizer steps: the suite runs it that way on the CPU
with a tiny model (`tests/test_device.py`), so the script cannot rot on machines without a GPU.
The rows (F1, seconds, latency, throughput, device name) are written to OUT/gpu-check.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def pipeline(device: str, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """Fine-tune, distil and LLM.int8() on `device`, then evaluate each model there: one row per step."""
    import torch

    from ndogo.compress.distill import DistillConfig, distill
    from ndogo.compress.quantize import quant_config, quantize
    from ndogo.device import device_name, resolve_device
    from ndogo.evaluate import evaluate
    from ndogo.train.finetune import FinetuneConfig, finetune

    where = resolve_device(device)
    precision = args.precision
    if precision == "auto":
        precision = "fp32" if where.type == "cpu" else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    rows: list[dict[str, Any]] = []

    def timed(step: str, build: Any, model_dir: Path) -> None:
        t0 = time.perf_counter()
        build()
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        row = evaluate(model_dir, args.data, args.lang, "test", speed=True, sample=args.sample, device=device)
        rows.append({"device": device_name(where), "step": step, "precision": precision,
                     "build_seconds": round(built, 1), "evaluate_seconds": round(time.perf_counter() - t0, 1),
                     "f1": round(row["f1"], 4), "latency_ms_b1": row.get("latency_ms_b1"),
                     "throughput_b32": row.get("throughput_b32"), "timed_on": row.get("device"),
                     "kind": row["kind"], "size_mb": round(row["size_bytes"] / 1e6, 1)})
        print(_line(rows[-1]), flush=True)

    teacher, student, int8 = work / "finetune", work / "student", work / "llm-int8"
    timed("fine-tune (1 epoch)", lambda: finetune(
        FinetuneConfig(model=args.model, data=args.data, langs=[args.lang], out=str(teacher), epochs=1,
                       max_steps=args.steps, batch_size=16, precision=precision, device=device),
        show_progress=False), teacher)
    timed(f"distil a {args.student_layers}-layer student (1 epoch)", lambda: distill(
        teacher, student, DistillConfig(mode="task", student_layers=args.student_layers, data=args.data,
                                        langs=[args.lang], epochs=1, max_steps=args.steps, precision=precision,
                                        device=device, show_progress=False)), student)
    # quantizing is exact and takes seconds on the CPU; LLM.int8() then runs where the model is evaluated
    timed("LLM.int8() of the fine-tuned model", lambda: quantize(teacher, int8, quant_config("llm-int8")), int8)
    return rows


def _line(row: dict[str, Any]) -> str:
    latency = "-" if row["latency_ms_b1"] is None else f"{row['latency_ms_b1']:.2f} ms"
    return (f"{row['device']:>26} | {row['step']:<40} | F1 {100 * row['f1']:6.2f} | built {row['build_seconds']:7.1f}s"
            f" | evaluated {row['evaluate_seconds']:6.1f}s | batch-1 latency {latency} ({row['timed_on']})")


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm", help="model to fine-tune (default minilm)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "masakhaner"))
    parser.add_argument("--lang", default="hau")
    parser.add_argument("--out", required=True, help="work folder: the models and gpu-check.json")
    parser.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu",
                        help="comma-separated devices to run the pipeline on (default: cpu and cuda where present)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                        help="auto: fp32 on the CPU, bf16 on a GPU that has it, else fp16")
    parser.add_argument("--student-layers", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="cap every training run at this many steps")
    parser.add_argument("--sample", type=int, default=200, help="test sentences timed for latency")
    args = parser.parse_args(argv)
    out = Path(args.out)
    rows = []
    t0 = time.perf_counter()
    for device in [d.strip() for d in args.devices.split(",") if d.strip()]:
        rows += pipeline(device, args, out / device.replace(":", "-"))
    seconds = round(time.perf_counter() - t0, 1)
    (out / "gpu-check.json").write_text(json.dumps({"rows": rows, "seconds": seconds}, indent=2) + "\n")
    print(f"{len(rows)} rows in {seconds:.0f}s; written to {out / 'gpu-check.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
