"""The same language at two training sizes: does more data make a compression cheaper?

The study's "data-sparse languages degrade first" compares languages, which differ in much more
than size. MasakhaNER 1.0 and 2.0 share nine languages, and 2.0's training sets are 2-8x larger
(luo: 644 sentences against 5,161), so the atlas holds a cleaner test for those languages: the same
model, methods and language, trained on each corpus (step a: 10 epochs; step c: 5 epochs, about as
many steps), and the ΔF1 of each method on each.

    python bench/lab/same_language.py docs/bench/atlas-minilm.csv docs/bench/atlas-facts.csv \
        docs/bench/atlas-mnr2.csv docs/bench/atlas-facts-mnr2.csv --csv docs/bench/same-language.csv

Prints one line per (language, method) both corpora measured: training sentences and test ΔF1 on
each, and the change (2.0 minus 1.0; positive: the larger corpus loses less). One seed each: read a
difference within about 2 points (twice the largest baseline seed spread, docs/bench/atlas-seeds.csv)
as noise. The test sets differ too (2.0's are larger and re-annotated), which no script can remove.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from ndogo.experiments.store import load_rows
from ndogo.report.summary import BASELINE, summarize


def sentences(path: Path, tokenizer: str) -> dict[str, int]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {r["lang"]: int(r["train_sentences"]) for r in csv.DictReader(handle) if r["tokenizer"] == tokenizer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("small", type=Path, help="rows on the smaller corpus (CSV or sweep folder)")
    parser.add_argument("small_facts", type=Path, help="the CSV of `ndogo data stats --facts` for that corpus")
    parser.add_argument("large", type=Path, help="rows on the larger corpus")
    parser.add_argument("large_facts", type=Path, help="the CSV of `ndogo data stats --facts` for that corpus")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--threshold", type=float, default=2.0, help="points under which a change is noise")
    parser.add_argument("--csv", type=Path, help="also write the rows here")
    args = parser.parse_args()

    def deltas(source: Path) -> dict[tuple[str, str], float]:
        rows = [r for r in load_rows(source) if r.get("model") == args.model]
        return {(s.lang, s.recipe): s.delta for s in summarize(rows) if s.delta is not None}

    small, large = deltas(args.small), deltas(args.large)
    n_small, n_large = sentences(args.small_facts, args.model), sentences(args.large_facts, args.model)
    both = [k for k in large if k in small and k[1] != BASELINE]
    out = [{"lang": lang, "recipe": recipe, "train_small": n_small.get(lang), "train_large": n_large.get(lang),
            "delta_small": round(small[(lang, recipe)], 2), "delta_large": round(large[(lang, recipe)], 2),
            "change": round(large[(lang, recipe)] - small[(lang, recipe)], 2)} for lang, recipe in both]
    if not out:
        raise SystemExit(f"no language and method measured in both {args.small} and {args.large}")
    print("| lang | method | train sentences (small → large) | ΔF1 small | ΔF1 large | change |")
    print("|---|---|---:|---:|---:|---:|")
    for r in sorted(out, key=lambda r: (r["lang"], r["recipe"])):
        flag = "" if abs(r["change"]) > args.threshold else " (noise)"
        print(f"| {r['lang']} | {r['recipe']} | {r['train_small']} → {r['train_large']} | {r['delta_small']:+.2f} | "
              f"{r['delta_large']:+.2f} | {r['change']:+.2f}{flag} |")
    print()
    print("| method | languages | mean change | larger corpus loses less (> threshold) | loses more |")
    print("|---|---:|---:|---|---|")
    for recipe in dict.fromkeys(r["recipe"] for r in out):
        group = [r for r in out if r["recipe"] == recipe]
        less = [r["lang"] for r in group if r["change"] > args.threshold]
        more = [r["lang"] for r in group if r["change"] < -args.threshold]
        print(f"| {recipe} | {len(group)} | {statistics.fmean(r['change'] for r in group):+.2f} | "
              f"{', '.join(less) or '–'} | {', '.join(more) or '–'} |")
    if args.csv:
        with args.csv.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(out[0]))
            writer.writeheader()
            writer.writerows(out)


if __name__ == "__main__":
    main()
