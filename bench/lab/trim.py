"""Vocabulary trimming on the minilm baselines: vocabulary kept, size, latency and F1, alone and with int8.

For each language (MasakhaNER 1.0 hau, swa, yor) and its fine-tuned baseline
runs/minilm-<lang>, this builds under runs/trim/:

    minilm-<lang>-trim          trimmed to the train text + monolingual text, leaving out the monolingual
                                lines that contain a dev/test sentence (the recommended setting)
    minilm-<lang>-trim-train    trimmed to the train text only (more words take the fallback)
    minilm-<lang>-trim-wide9500 a 9,500 sub-word budget: the language's own sub-words, then the most
                                frequent ones of the other languages' monolingual text (--other-langs)
    minilm-<lang>-<int8>        the untrimmed baseline quantized with the int8 method (default onnx-int8)
    minilm-<lang>-trim-<int8>, minilm-<lang>-trim-wide9500-<int8>   the trimmed models quantized the same way

and scores each on the test split (F1 with one thread, as `ndogo evaluate --no-speed --threads 1`).
Latency is a separate step because timing must run alone on the machine:

    python bench/lab/trim.py prepare                                   # trims, quantizes, test F1
    flock /tmp/ndogo-bench.lock python bench/lab/trim.py speed         # batch-1 latency, 1 thread
    python bench/lab/trim.py table --out docs/results-trim.md          # the markdown table

Every step skips what already exists (rows in runs/trim/rows/), so an
interrupted run is resumed by running the same command again. The baselines
themselves are only read: their rows are kept under runs/trim/rows/ too.

The grid itself is configs/trim-variants.toml now, its rows in the result store
(`ndogo sweep configs/trim-variants.toml ...`, `ndogo report ... --table`); this
script stays for `fallbacks()` and `leaky_plan()`, which are not grids.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "runs" / "trim"
ROWS = OUT / "rows"
LANGS = ("hau", "swa", "yor")
# Vocabulary budget of the "wide" trim (own language first, then other languages' text):
# chosen so that with int8 the model is at least 6x smaller than the fp32 baseline
# (10,000 gave 5.998x on hau).
WIDE_KEEP = 9_500
WIDE = f"trim-wide{WIDE_KEEP / 1000:g}k"


def variants(lang: str, int8: str) -> dict[str, Path]:
    """Variant name -> model directory, in table order."""
    return {
        "fp32": ROOT / "runs" / f"minilm-{lang}",
        "trim": OUT / f"minilm-{lang}-trim",
        "trim-train": OUT / f"minilm-{lang}-trim-train",
        WIDE: OUT / f"minilm-{lang}-trim-wide{WIDE_KEEP}",
        int8: OUT / f"minilm-{lang}-{int8}",
        f"trim+{int8}": OUT / f"minilm-{lang}-trim-{int8}",
        f"{WIDE}+{int8}": OUT / f"minilm-{lang}-trim-wide{WIDE_KEEP}-{int8}",
    }


def build(lang: str, int8: str) -> None:
    """Trim and quantize the baseline of one language (skipping models already built)."""
    from ndogo.compress.quantize import quant_config, quantize
    from ndogo.compress.trim import TrimConfig, trim

    paths = variants(lang, int8)
    steps = [
        ("trim", lambda out: trim(paths["fp32"], out, TrimConfig(
            lang=lang, data=str(DATA / "masakhaner"), corpus=str(DATA / "monolingual"), show_progress=True))),
        ("trim-train", lambda out: trim(paths["fp32"], out, TrimConfig(
            lang=lang, data=str(DATA / "masakhaner"), show_progress=True))),
        (WIDE, lambda out: trim(paths["fp32"], out, TrimConfig(
            lang=lang, data=str(DATA / "masakhaner"), corpus=str(DATA / "monolingual"), other_langs=True,
            keep=WIDE_KEEP, show_progress=True))),
        (int8, lambda out: quantize(paths["fp32"], out, quant_config(int8))),
        (f"trim+{int8}", lambda out: quantize(paths["trim"], out, quant_config(int8))),
        (f"{WIDE}+{int8}", lambda out: quantize(paths[WIDE], out, quant_config(int8))),
    ]
    for name, make in steps:
        out = paths[name]
        if (out / "ndogo.json").is_file():
            continue
        if out.exists():
            shutil.rmtree(out)  # an interrupted build of ours; start it again
        print(f"[{lang}] building {name} -> {out}", file=sys.stderr)
        make(out)


def changed_words(base: Path, trimmed: Path, lang: str) -> float:
    """Share of test words whose sub-words the trimmed tokenizer splits differently (the fallback)."""
    from ndogo.data.conll import read_conll
    from ndogo.models.loading import load_tokenizer

    old, new = load_tokenizer(base), load_tokenizer(trimmed)
    words = [w for s in read_conll(DATA / "masakhaner" / lang / "test.txt").sentences for w in s.tokens]
    changed = sum(old.tokenize(w) != new.tokenize(w) for w in words)
    return changed / len(words)


def leaky_plan(lang: str, base: Path) -> dict[str, Any]:
    """Vocabulary and test re-split rate had the monolingual lines holding test sentences been counted.

    Only the plan is computed (no model): it shows why `exclude_eval` is on by default.
    """
    from ndogo.compress.trim import count_tokens, monolingual_lines, plan_vocab, text_characters
    from ndogo.data.conll import read_conll
    from ndogo.models.loading import load_tokenizer

    tok = load_tokenizer(base)
    train = [s.tokens for s in read_conll(DATA / "masakhaner" / lang / "train.txt").sentences]
    lines = monolingual_lines(DATA / "monolingual", lang)
    chars = text_characters(tok.backend_tokenizer, [" ".join(s) for s in train] + lines)
    plan = plan_vocab(tok, count_tokens(tok, train, lines), chars)
    kept = set(plan.keep_ids)
    words = [w for s in read_conll(DATA / "masakhaner" / lang / "test.txt").sentences for w in s.tokens]
    resplit = sum(any(i not in kept for i in tok(w, add_special_tokens=False)["input_ids"]) for w in words)
    return {"vocab": len(plan.keep_ids), "test_words_changed": resplit / len(words)}


def fallbacks(lang: str) -> dict[str, float]:
    """Test F1 of the untrimmed model when the words the trimmed vocabulary lacks are fed four ways.

    Run on the fp32 baseline with its full embedding matrix, so only the input changes:
    `shorter-split` is what the trimmed tokenizer does; `word-unk` maps each such
    word to [UNK]; `piece-unk` keeps the old split but maps each removed piece to
    [UNK]; `nearest-row` keeps the old split and maps each removed piece to the kept
    sub-word whose embedding is most similar (cosine). The last one is not
    available to a trimmed model: a tokenizer.json cannot map two strings to one
    id and survive being saved again, so it is measured here as a bound only.
    """
    from ndogo.data.corpus import load_corpus
    from ndogo.metrics.entity import score
    from ndogo.models.loading import load_tokenizer
    from ndogo.models.runner import load_runner
    from ndogo.models.windowing import Window, encode_sentences, predict_words

    base, trimmed = variants(lang, "")["fp32"], variants(lang, "")["trim"]
    runner = load_runner(base)
    vocab = runner.tokenizer.get_vocab()
    new_tok = load_tokenizer(trimmed)
    kept_ids = sorted(vocab[t] for t in new_tok.get_vocab())
    kept = torch.zeros(len(vocab), dtype=torch.bool)
    kept[kept_ids] = True
    sentences = load_corpus(str(DATA / "masakhaner"), lang, ("test",)).splits["test"]
    words, gold = [s.tokens for s in sentences], [s.tags for s in sentences]

    def f1(windows: list[Window], ws: list[list[str]] = words) -> float:
        probs = predict_words(runner.forward, windows, [len(w) for w in ws], runner.pad_id)
        return score(gold, [[runner.labels[i] for i in p.argmax(-1)] for p in probs])["f1"]

    def remapped(windows: list[Window], table: list[int]) -> list[Window]:
        return [Window(w.sent, w.word_start, w.word_end, [table[i] for i in w.input_ids], w.labels, w.first_pos)
                for w in windows]

    windows = encode_sentences(runner.tokenizer, words, runner.max_length)
    unk = runner.tokenizer.unk_token_id
    piece_unk = torch.arange(len(vocab))
    piece_unk[~kept] = unk
    emb = torch.nn.functional.normalize(runner.module.get_input_embeddings().weight.detach(), dim=-1)
    kept_index = torch.tensor(kept_ids)
    nearest = torch.arange(len(vocab))
    nearest[~kept] = kept_index[(emb[~kept] @ emb[kept_index].T).argmax(-1)]
    lacking = {w for s in words for w in s if not all(kept[i] for i in runner.tokenizer(w, add_special_tokens=False)
                                                        ["input_ids"])}
    unk_words = [[runner.tokenizer.unk_token if w in lacking else w for w in s] for s in words]
    to_old = {i: vocab[t] for t, i in new_tok.get_vocab().items()}
    shorter = [Window(w.sent, w.word_start, w.word_end, [to_old[i] for i in w.input_ids], w.labels, w.first_pos)
               for w in encode_sentences(new_tok, words, runner.max_length)]
    return {
        "untrimmed": f1(windows),
        "shorter-split": f1(shorter),
        "word-unk": f1(encode_sentences(runner.tokenizer, unk_words, runner.max_length), unk_words),
        "piece-unk": f1(remapped(windows, piece_unk.tolist())),
        "nearest-row": f1(remapped(windows, nearest.tolist())),
    }


def row_path(lang: str, name: str, kind: str) -> Path:
    return ROWS / f"{lang}-{name.replace('+', '-')}-{kind}.json"


def prepare(langs: list[str], int8: str) -> None:
    """Build every variant and score it on the test split with one thread."""
    from ndogo.evaluate import evaluate
    from ndogo.models.runner import load_runner

    torch.set_num_threads(1)
    ROWS.mkdir(parents=True, exist_ok=True)
    for lang in langs:
        base = ROOT / "runs" / f"minilm-{lang}"
        meta = json.loads((base / "metrics.json").read_text()) if (base / "metrics.json").is_file() else {}
        if meta.get("epochs_run", 0) < 10:  # the baselines run 10 epochs (bench/baselines.sh)
            print(f"[{lang}] baseline {base} not finished; skipped", file=sys.stderr)
            continue
        build(lang, int8)
        fb = row_path(lang, "trim", "fallbacks")
        if not fb.is_file():
            print(f"[{lang}] comparing fallbacks", file=sys.stderr)
            fb.write_text(json.dumps(fallbacks(lang), indent=2) + "\n")
        leak = row_path(lang, "trim-with-test-lines", "plan")
        if not leak.is_file():
            leak.write_text(json.dumps(leaky_plan(lang, base), indent=2) + "\n")
        for name, path in variants(lang, int8).items():
            target = row_path(lang, name, "f1")
            if target.is_file():
                continue
            print(f"[{lang}] scoring {name}", file=sys.stderr)
            row = evaluate(path, str(DATA / "masakhaner"), lang, "test", speed=False, threads=1, show_progress=True)
            row["variant"] = name
            row["vocab"] = len(load_runner(path).tokenizer)
            if name.startswith("trim"):
                row["test_words_changed"] = round(changed_words(base, path, lang), 6)
            target.write_text(json.dumps(row, indent=2, ensure_ascii=False) + "\n")


def speed(langs: list[str], int8: str, threads: int) -> None:
    """Batch-1 latency (and batch-32 throughput) the way `ndogo evaluate` measures them."""
    from ndogo.data.corpus import load_corpus
    from ndogo.metrics.perf import measure
    from ndogo.models.runner import load_runner
    from ndogo.models.windowing import encode_sentences

    torch.set_num_threads(threads)
    for lang in langs:
        sentences = [s.tokens for s in load_corpus(str(DATA / "masakhaner"), lang, ("test",)).splits["test"]]
        for name, path in variants(lang, int8).items():
            target = row_path(lang, name, "speed")
            if target.is_file() or not (path / "ndogo.json").is_file():
                continue
            print(f"[{lang}] timing {name}", file=sys.stderr)
            runner = load_runner(path)
            windows = encode_sentences(runner.tokenizer, sentences, runner.max_length)
            row = measure(runner.forward, windows, runner.pad_id)
            target.write_text(json.dumps(row, indent=2) + "\n")


def load_row(lang: str, name: str, kind: str) -> dict[str, Any] | None:
    path = row_path(lang, name, kind)
    return json.loads(path.read_text()) if path.is_file() else None


def table(langs: list[str], int8: str) -> str:
    """The markdown table: one line per language and variant, compared with the fp32 baseline."""
    lines = [
        "| lang | model | vocabulary | test words re-split | size (MB) | smaller | latency b1 (ms) | speed-up "
        "| test F1 | ΔF1 (points) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    losses: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    for lang in langs:
        base = load_row(lang, "fp32", "f1")
        base_speed = load_row(lang, "fp32", "speed")
        if base is None:
            continue
        for name in variants(lang, int8):
            row = load_row(lang, name, "f1")
            if row is None:
                continue
            spd = load_row(lang, name, "speed")
            lat = f"{spd['latency_ms_b1']:.2f}" if spd else "n/a"
            up = f"{base_speed['latency_ms_b1'] / spd['latency_ms_b1']:.2f}×" if spd and base_speed else "n/a"
            ratio = base["size_bytes"] / row["size_bytes"]
            delta = 100 * (row["f1"] - base["f1"])
            loss = -delta
            losses.setdefault(name, []).append(loss)
            ratios.setdefault(name, []).append(ratio)
            changed = f"{100 * row['test_words_changed']:.2f}%" if "test_words_changed" in row else "–"
            lines.append(f"| {lang} | {name} | {row['vocab']:,} | {changed} | {row['size_bytes'] / 1e6:.1f} | "
                         f"{ratio:.2f}× | {lat} | {up} | {row['f1']:.4f} | {delta:+.2f} |")
    fbs = [(lang, load_row(lang, "trim", "fallbacks")) for lang in langs]
    names = ("untrimmed", "shorter-split", "word-unk", "piece-unk", "nearest-row")
    lines += ["", "Test F1 of the fp32 model when the words the `trim` vocabulary lacks are fed in other ways "
              "(`fallbacks()` in bench/lab/trim.py):", "", "| lang | " + " | ".join(names) + " |",
              "|---|" + "---:|" * len(names)]
    lines += [f"| {lang} | " + " | ".join(f"{f[n]:.4f}" for n in names) + " |" for lang, f in fbs if f]
    leaks = [(lang, load_row(lang, "trim-with-test-lines", "plan")) for lang in langs]
    lines += ["", "Had the monolingual lines that contain test sentences been counted (they are left out above):", "",
              "| lang | vocabulary | test words re-split |", "|---|---:|---:|"]
    lines += [f"| {lang} | {p['vocab']:,} | {100 * p['test_words_changed']:.2f}% |" for lang, p in leaks if p]
    lines += ["", "| model | mean size reduction | mean F1 loss (points) |", "|---|---:|---:|"]
    for name, values in losses.items():
        lines.append(f"| {name} | {sum(ratios[name]) / len(ratios[name]):.2f}× | {sum(values) / len(values):.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("prepare", "speed", "table"))
    parser.add_argument("--langs", default=",".join(LANGS), help="Comma-separated languages.")
    parser.add_argument("--int8", default="onnx-int8", help="Quantization method stacked on the trimmed model.")
    parser.add_argument("--threads", type=int, default=1, help="Threads for the latency step.")
    parser.add_argument("--out", type=Path, default=None, help="table: also write the markdown here.")
    args = parser.parse_args()
    langs = [x.strip() for x in args.langs.split(",") if x.strip()]
    if args.step == "prepare":
        prepare(langs, args.int8)
    elif args.step == "speed":
        speed(langs, args.int8, args.threads)
    else:
        text = table(langs, args.int8)
        print(text)
        print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}", file=sys.stderr)
        if args.out:
            args.out.write_text(text)


if __name__ == "__main__":
    main()
