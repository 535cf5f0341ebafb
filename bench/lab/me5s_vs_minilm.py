"""me5s beside minilm: what each method costs each model, per language, from committed rows only.

Reads the me5s rows (docs/bench/me5s.csv, docs/lab/results-log-2026-11-to-12.md §9, overlaid by the atlas's step b,
docs/bench/atlas-me5s.csv: the same cells at the same budget), minilm's atlas rows
(docs/bench/atlas-minilm.csv) and minilm's one-shot pruning sweep (docs/bench/prune-sweep.csv:
pruned after fine-tuning, no recovery, scored on the model's own language), and prints one markdown
table: test F1 of each baseline, then ΔF1 (points) and how many times smaller each method makes
each model. A cell is "–" where no committed row holds it; nothing is typed in.

    python bench/lab/me5s_vs_minilm.py --langs hau,swa,yor

`--disagree` prints instead, per method, the languages where the two models' ΔF1 differ by more
than `--threshold` points (default 2: twice the largest seed spread of a minilm baseline in
docs/bench/atlas-seeds.csv, luo's 0.84, rounded up; a smaller difference is not told from noise).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "bench"
# me5s recipe -> the minilm recipe that is the same method (a 6-layer student of a 12-layer
# model against a 3-layer student of a 6-layer one: both halve the depth)
SAME = {"onnx-int8": "onnx-int8", "llm-int8": "llm-int8", "dynamic-int8": "dynamic-int8",
        "trimw-int8": "trimw-int8", "distil6": "distil3", "distil6-int8": "distil3-int8"}


def done(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("status", "done") == "done"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--langs", help="comma-separated (default: every language with a me5s baseline)")
    parser.add_argument("--disagree", action="store_true", help="list where the two models' ΔF1 differ")
    parser.add_argument("--threshold", type=float, default=2.0, help="points that count as a difference")
    args = parser.parse_args()
    me5s = {(r["lang"], r["recipe"]): r for r in done(DOCS / "me5s.csv")}
    if (DOCS / "atlas-me5s.csv").is_file():
        me5s.update({(r["lang"], r["recipe"]): r for r in done(DOCS / "atlas-me5s.csv")})
    langs = args.langs.split(",") if args.langs else sorted({lang for lang, recipe in me5s if recipe == "baseline"})
    minilm = {(r["lang"], r["recipe"]): r for r in done(DOCS / "atlas-minilm.csv")}
    for r in done(DOCS / "prune-sweep.csv"):
        if r["when"] == "after" and r["recover_epochs"] == "0" and r["eval_lang"] == r["model_lang"]:
            minilm[(r["model_lang"], f"prune-{round(100 * float(r['sparsity']))}")] = {
                "f1": r["f1"], "size_bytes": r["size_bytes"], "source": "prune-sweep"}
        if r["when"] == "dense" and r["eval_lang"] == r["model_lang"] and (r["model_lang"], "baseline") not in minilm:
            minilm[(r["model_lang"], "baseline")] = {"f1": r["f1"], "size_bytes": r["size_bytes"]}

    def delta(rows: dict, lang: str, recipe: str) -> float | None:
        base, row = rows.get((lang, "baseline")), rows.get((lang, recipe))
        return 100 * (float(row["f1"]) - float(base["f1"])) if base and row else None

    def cell(rows: dict, lang: str, recipe: str) -> str:
        d = delta(rows, lang, recipe)
        if d is None:
            return "–"
        smaller = float(rows[(lang, "baseline")]["size_bytes"]) / float(rows[(lang, recipe)]["size_bytes"])
        return f"{d:+.2f} ({smaller:.1f}×)"

    recipes = list(SAME) + [f"prune-{s}" for s in range(10, 100, 10)]
    if args.disagree:
        print(f"| method (me5s / minilm) | languages with both | me5s loses more (> {args.threshold:g} pts) | "
              "minilm loses more | within the threshold |")
        print("|---|---:|---|---|---|")
        for recipe in recipes:
            other = SAME.get(recipe, recipe)
            pairs = [(x, delta(me5s, x, recipe), delta(minilm, x, other)) for x in langs]
            pairs = [(x, a, b) for x, a, b in pairs if a is not None and b is not None]
            if not pairs:
                continue
            worse = [f"{x} ({a:+.1f} / {b:+.1f})" for x, a, b in pairs if a < b - args.threshold]
            better = [f"{x} ({a:+.1f} / {b:+.1f})" for x, a, b in pairs if b < a - args.threshold]
            same = [x for x, a, b in pairs if abs(a - b) <= args.threshold]
            name = recipe if other == recipe else f"{recipe} / {other}"
            print(f"| {name} | {len(pairs)} | {', '.join(worse) or '–'} | {', '.join(better) or '–'} | "
                  f"{', '.join(same) or '–'} |")
        return

    header = "| method (me5s / minilm) | " + " | ".join(f"{lang} me5s | {lang} minilm" for lang in langs) + " |"
    print(header)
    print("|---|" + "---:|---:|" * len(langs))
    base = [f"{100 * float(me5s[(x, 'baseline')]['f1']):.2f}" if (x, "baseline") in me5s else "–" for x in langs]
    mini = [f"{100 * float(minilm[(x, 'baseline')]['f1']):.2f}" if (x, "baseline") in minilm else "–" for x in langs]
    pairs = " | ".join(f"{a} | {b}" for a, b in zip(base, mini, strict=True))
    print(f"| test F1 of the fp32 baseline | {pairs} |")
    for recipe in recipes:
        other = SAME.get(recipe, recipe)
        name = recipe if other == recipe else f"{recipe} / {other}"
        print(f"| {name} | " + " | ".join(f"{cell(me5s, x, recipe)} | {cell(minilm, x, other)}" for x in langs)
              + " |")


if __name__ == "__main__":
    main()
