"""Training step time with torch's default AdamW against the fused one `ndogo.train.optim.adamw` builds.

On a CPU, torch's default AdamW updates the parameters list by list; me5s's 250k-row embedding table
is 96M of its 118M parameters, so that update can cost more than the forward and backward passes.
`ndogo.train.optim.adamw` asks torch for its fused kernel (the same algorithm); this measures what
that buys, and how far the two drift apart (floats may round differently):

    python bench/lab/fused_adamw.py --models minilm,me5s,me5s:6 --threads 1 --out docs/bench/fused-adamw.md

Per model, two copies with the same weights, each with its optimizer (default and fused), take the
same batches (16 windows of 72 sub-words shaped like MasakhaNER's, random ids: the cost does not
depend on the words), alternating so that both see the same machine load; the median of `--steps`
full steps (forward, backward, optimizer) each, after two warm-up steps, and the largest difference
between the two copies' weights after them (dropout is off in both, so that only the optimizers
differ; a step costs the same with it). `me5s:6` is me5s cut to its first 6 layers, the
student shape `distill:student_layers=6` trains. Writes a markdown table (a CSV beside it).
"""

from __future__ import annotations

import argparse
import copy
import csv
import statistics
import time
from pathlib import Path


def measure(spec: str, steps: int, batch: int, width: int) -> dict[str, float]:
    import torch
    from transformers import AutoModelForTokenClassification

    from ndogo.console import quiet_loading
    from ndogo.models.loading import resolve_model

    name, _, layers = spec.partition(":")
    torch.manual_seed(0)
    with quiet_loading():
        model = AutoModelForTokenClassification.from_pretrained(resolve_model(name), num_labels=9)
    if layers:
        model.base_model.encoder.layer = model.base_model.encoder.layer[: int(layers)]
        model.config.num_hidden_layers = int(layers)
    # dropout off, so that the two copies compute the same thing and differ only by the optimizer's rounding
    model.eval()
    fused_model = copy.deepcopy(model)
    optimizers = {"default": torch.optim.AdamW(model.parameters(), lr=5e-5),
                  "fused": torch.optim.AdamW(fused_model.parameters(), lr=5e-5, fused=True)}
    models = {"default": model, "fused": fused_model}
    times: dict[str, list[float]] = {"default": [], "fused": []}
    for step in range(steps + 2):
        ids = torch.randint(1000, 20000, (batch, width))
        mask = torch.ones_like(ids)
        labels = torch.randint(0, 9, (batch, width))
        for kind in ("default", "fused"):
            start = time.perf_counter()
            loss = models[kind](input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimizers[kind].step()
            optimizers[kind].zero_grad(set_to_none=True)
            if step >= 2:
                times[kind].append(time.perf_counter() - start)
    drift = max((a - b).abs().max().item() for a, b in zip(model.parameters(), fused_model.parameters(), strict=True))
    params = sum(p.numel() for p in model.parameters())
    default, fused = statistics.median(times["default"]), statistics.median(times["fused"])
    return {"model": spec, "params_m": round(params / 1e6, 1), "default_s": round(default, 4),
            "fused_s": round(fused, 4), "speedup": round(default / fused, 2), "max_weight_diff": f"{drift:.2e}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="minilm,me5s,me5s:6", help="comma-separated names (name:N keeps N layers)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=8, help="measured steps per optimizer")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--width", type=int, default=72, help="sub-words per window")
    parser.add_argument("--out", type=Path, required=True, help="markdown table; the CSV goes beside it")
    args = parser.parse_args()

    import torch

    from ndogo.metrics.perf import cpu_model

    torch.set_num_threads(args.threads)
    rows = []
    for spec in [m.strip() for m in args.models.split(",") if m.strip()]:
        row = measure(spec, args.steps, args.batch, args.width)
        rows.append({**row, "steps": args.steps, "threads": args.threads})
        print(f"{spec}: default {row['default_s']:.3f} s/step, fused {row['fused_s']:.3f} s/step, "
              f"{row['speedup']:.2f}x; weights differ by at most {row['max_weight_diff']}", flush=True)
    lines = [f"Machine: {cpu_model()}, torch {torch.__version__}, {args.threads} thread(s), batch {args.batch} x "
             f"{args.width} sub-words, median of {args.steps} full steps each, the two optimizers alternating.",
             "", "| model | parameters (M) | default AdamW s/step | fused AdamW s/step | fused faster | "
             f"largest weight difference after {args.steps + 2} steps |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['params_m']} | {r['default_s']:.3f} | {r['fused_s']:.3f} | {r['speedup']:.2f}× "
              f"| {r['max_weight_diff']} |" for r in rows]
    args.out.write_text("\n".join(lines) + "\n")
    with args.out.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(args.out)


if __name__ == "__main__":
    main()
