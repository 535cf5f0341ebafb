"""Training step time in fp32 against bf16 autocast, side by side, for the project's encoders.

`ndogo finetune --precision bf16` (and `distill ... precision=bf16`) autocasts the forward and
backward passes to bfloat16; weights, optimizer and dev scoring stay fp32. Whether that pays
depends on the CPU (AMX or AVX512-BF16: native; elsewhere emulated and slower), so it is
measured here rather than assumed:

    python bench/lab/train_precision.py --models minilm,me5s --threads 1 --out docs/bench/train-precision.md

One optimizer step of token classification on a batch shaped like MasakhaNER's (16 windows of 72
sub-words, random ids: the cost does not depend on the words), alternating fp32 and bf16 steps on
the same model so that both see the same machine load; the median of `--steps` steps each, after
two warm-up steps. Writes a markdown table (and a CSV beside it) with the machine.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path


def step_times(model_name: str, steps: int, batch: int, width: int) -> dict[str, list[float]]:
    import torch
    from transformers import AutoModelForTokenClassification

    from ndogo.console import quiet_loading
    from ndogo.models.loading import resolve_model

    torch.manual_seed(0)
    with quiet_loading():
        model = AutoModelForTokenClassification.from_pretrained(resolve_model(model_name), num_labels=9)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    ids = torch.randint(1000, 20000, (batch, width))
    mask = torch.ones_like(ids)
    labels = torch.randint(0, 9, (batch, width))
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for i in range(2 * (steps + 2)):
        precision = ("fp32", "bf16")[i % 2]
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.float().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= 4:  # two warm-up steps of each
            times[precision].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="minilm,me5s", help="comma-separated model names or paths")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=8, help="measured steps per precision")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--width", type=int, default=72, help="sub-words per window")
    parser.add_argument("--out", type=Path, required=True, help="markdown table; the CSV goes beside it")
    args = parser.parse_args()

    import torch

    from ndogo.train.mlm import resolve_precision

    torch.set_num_threads(args.threads)
    if resolve_precision("auto") != "bf16":
        raise SystemExit("this CPU has no native bf16 (AMX or AVX512-BF16): bf16 training would be emulated")
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        times = step_times(name, args.steps, args.batch, args.width)
        fp32, bf16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
        rows.append({"model": name, "fp32_s": round(fp32, 4), "bf16_s": round(bf16, 4),
                     "speedup": round(fp32 / bf16, 2), "steps": args.steps, "threads": args.threads})
        print(f"{name}: fp32 {fp32:.3f} s/step, bf16 {bf16:.3f} s/step, {fp32 / bf16:.2f}x", flush=True)
    from ndogo.metrics.perf import cpu_model

    cpu = cpu_model()
    lines = [f"Machine: {cpu}, torch {torch.__version__}, {args.threads} thread(s), batch {args.batch} x "
             f"{args.width} sub-words, median of {args.steps} steps each, fp32 and bf16 alternating.", "",
             "| model | fp32 s/step | bf16 s/step | bf16 faster |", "|---|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['fp32_s']:.3f} | {r['bf16_s']:.3f} | {r['speedup']:.2f}× |" for r in rows]
    args.out.write_text("\n".join(lines) + "\n")
    with args.out.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(args.out)


if __name__ == "__main__":
    main()
