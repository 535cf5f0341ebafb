"""Size on disk and batch-1 latency of fp32 ONNX, onnx-int8 and onnx-int4 on minilm, side by side in one run.

The model is minilm with a random 9-label head (seeded): size and speed do not depend on
training, and no fine-tuned minilm is at hand here. Every variant is built from it
(`export_onnx`, `ndogo quantize --method ...`), loaded in the torch-free runtime
(`ndogo.deploy.runtime.load(threads=1)`), and timed on the same sentences at batch 1:
one sentence per call, the variants taking turns sentence by sentence, so a busy machine's
load falls on all of them alike. Ratios within one run are what compare; absolute
milliseconds depend on the machine's load, which the CSV records (load average before and
after) beside the CPU's name.

Agreement: the share of words whose tag equals the fp32 model's, on the same sentences.
With a random head the logits are nearly tied, so this is a pessimistic view of what
quantization does to a trained model's decisions; it is there to catch a broken graph.

    python bench/lab/int4_size_speed.py --calls 200 --csv docs/bench/int4-size-speed.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-DATE", "I-DATE"]
# name: (method, options); None is the fp32 export
VARIANTS: dict[str, tuple[str, dict[str, Any]] | None] = {
    "onnx-fp32": None,
    "onnx-int8": ("onnx-int8", {}),
    "onnx-int4": ("onnx-int4", {}),
    "onnx-int4 block_size=128": ("onnx-int4", {"block_size": 128}),
    "onnx-int4 matmul=int8": ("onnx-int4", {"matmul": "int8"}),
}


def random_head_model(base: str, out: Path, seed: int) -> Path:
    """`base` with a fresh (random, seeded) 9-label token-classification head, saved in `out`."""
    import torch

    from ndogo.models.loading import load_for_tokens, load_tokenizer

    if (out / "config.json").is_file():
        return out
    torch.manual_seed(seed)
    load_for_tokens(base, labels=LABELS).save_pretrained(out, safe_serialization=True)
    load_tokenizer(base).save_pretrained(out)
    return out


def build(model: Path, work: Path) -> dict[str, Path]:
    """Every variant's model directory (reused when already built)."""
    from ndogo.compress.export import export_onnx
    from ndogo.compress.quantize import quant_config, quantize

    built = {}
    for name, spec in VARIANTS.items():
        out = work / name.replace(" ", "_").replace("=", "-")
        if not (out / "ndogo.json").is_file():
            print(f"building {name} ...", flush=True)
            if spec is None:
                export_onnx(model, out)
            else:
                quantize(model, out, quant_config(spec[0], **spec[1]))
        built[name] = out
    return built


def sentences(n: int) -> list[str]:
    """Real hau test sentences where the data is beside the project; otherwise fixed Hausa-like ones."""
    test = ROOT.parent / "shared" / "data" / "masakhaner" / "hau" / "test.txt"
    if test.is_file():
        from ndogo.data.conll import read_conll

        return [" ".join(s.tokens) for s in read_conll(test).sentences[:n]]
    base = "Musa Aliyu ya je Kano ranar Litinin domin ganawa da gwamnan jihar a fadar gwamnati"
    return [" ".join(base.split()[: 6 + i % 10]) for i in range(n)]


def word_tags(predictor: Any, texts: list[str]) -> list[str]:
    """Every word's tag, read from the entities (a word in no entity is O)."""
    from ndogo.data.words import split_words

    tags = []
    for text, ents in zip(texts, predictor.predict(texts), strict=True):
        for word in split_words(text):
            label = next((e.label for e in ents if e.start <= word.start < e.end), "O")
            tags.append(label)
    return tags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm", help="base encoder (short name or directory)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ndogo-int4-bench"), help="where variants are built")
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--calls", type=int, default=200, help="timed batch-1 calls per variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", type=Path, default=ROOT / "docs" / "bench" / "int4-size-speed.csv")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from ndogo.deploy.runtime import load
    from ndogo.metrics.perf import cpu_model

    args.work.mkdir(parents=True, exist_ok=True)
    model = random_head_model(args.model, args.work / "fp32-torch", args.seed)
    paths = build(model, args.work)
    texts = sentences(args.sentences)
    predictors = {name: load(path, threads=1) for name, path in paths.items()}
    reference = word_tags(predictors["onnx-fp32"], texts)
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {name: [] for name in predictors}
    for predictor in predictors.values():  # warm-up, not recorded
        predictor.predict(texts[:2])
    for call in range(args.calls):
        text = texts[call % len(texts)]
        for name, predictor in predictors.items():
            start = time.perf_counter()
            predictor.predict(text)
            times[name].append(time.perf_counter() - start)
    load_after = os.getloadavg()[0]

    fp32_size = (paths["onnx-fp32"] / "model.onnx").stat().st_size
    int8_size = (paths["onnx-int8"] / "model.onnx").stat().st_size
    fp32_ms = statistics.median(times["onnx-fp32"]) * 1e3
    int8_ms = statistics.median(times["onnx-int8"]) * 1e3
    cores = os.cpu_count() or 1
    busy = max(load_before, load_after) > 0.5 * cores
    note = (f"busy machine (1-min load {max(load_before, load_after):.1f} on {cores} cores): absolute ms are "
            "noisy; compare the ratios, measured side by side in this run") if busy else "quiet machine"
    rows = []
    for name, path in paths.items():
        size = (path / "model.onnx").stat().st_size
        ms = statistics.median(times[name]) * 1e3
        tags = word_tags(predictors[name], texts)
        rows.append({
            "variant": name, "model_onnx_bytes": size, "size_vs_fp32": round(size / fp32_size, 3),
            "size_vs_int8": round(size / int8_size, 3), "latency_ms_b1_median": round(ms, 2),
            "latency_ms_b1_p90": round(sorted(times[name])[int(0.9 * len(times[name]))] * 1e3, 2),
            "speedup_vs_fp32": round(fp32_ms / ms, 2), "speedup_vs_int8": round(int8_ms / ms, 2),
            "word_tags_as_fp32": round(sum(a == b for a, b in zip(tags, reference, strict=True)) / len(reference), 3),
            "calls": args.calls, "sentences": len(texts), "threads": 1, "cpu": cpu_model(),
            "load_avg_1min_before": round(load_before, 2), "load_avg_1min_after": round(load_after, 2),
            "cores": cores, "model": f"{args.model} + random 9-label head (seed {args.seed})", "note": note,
        })
        print(rows[-1], flush=True)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
