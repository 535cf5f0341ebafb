"""Which languages degrade first under each method: the atlas's rows, ordered, beside the facts.

The study's claim to check is that complex or data-sparse languages degrade first. This reads
the committed rows (test ΔF1 against each language's own baseline, mean over the seeds a row
has) and, per method, lists the languages from the largest loss to the smallest, then the rank
correlation (Spearman's ρ, scipy) of that loss with each cheap fact: training sentences and
sub-words per word under the model's tokenizer. With nine languages a |ρ| below about 0.6 is not
distinguishable from no relation (p > 0.05), and the table prints p so nobody reads more into it.

    python bench/lab/atlas_order.py docs/bench/atlas-minilm.csv docs/bench/atlas-seeds.csv \
        --facts docs/bench/atlas-facts.csv --tokenizer minilm --csv docs/bench/atlas-order.csv

`--fact resplit_words_test` adds the share of test words trimming re-splits (`ndogo data stats --facts`
--trim), the fact that should matter for trim + int8 and for nothing else. `--fact baseline_f1`
is read from the rows, not the facts CSV: the language's baseline test F1 (mean over its seeds),
to ask whether a strong model is a robust one. ΔF1 subtracts that same baseline, so noise in it
biases ρ towards negative values; a positive ρ (stronger baseline, smaller loss) is not made by
that coupling.

Written by hand because it is a view no report needs elsewhere: a sort, a mean and scipy's ρ.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

from scipy.stats import spearmanr

from ndogo.experiments.row import BASELINE
from ndogo.experiments.store import load_rows
from ndogo.report.summary import summarize

FACTS = ("train_sentences", "fertility_test")
FROM_ROWS = "baseline_f1"  # a fact the rows give, not `ndogo data stats --facts`


def deltas(sources: list[str]) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Test ΔF1 in points per (method, language) and each language's baseline test F1 in points.

    Δ is the report's (`ndogo.report.summary`): each seed against the baseline of the same seed, then
    the mean over seeds, so these orderings agree with the generated tables digit for digit (this
    script once took each side's mean over its own seeds, which read luo's dynamic int8 as -9.52 where
    the tables say -8.65)."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    baselines: dict[str, float] = {}
    summaries = summarize([row for source in sources for row in load_rows(source)])
    for s in summaries:
        if s.recipe == BASELINE:
            baselines[s.lang] = 100 * s.f1_mean
    for s in summaries:
        if s.recipe == BASELINE or not baselines.get(s.lang) or s.delta is None:
            continue  # no baseline, or one that found nothing (minilm on amh): no loss to order
        out[s.recipe][s.lang] = s.delta
    return out, baselines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", help="Committed CSVs of rows or sweep directories.")
    parser.add_argument("--facts", required=True, help="the CSV of `ndogo data stats --facts`.")
    parser.add_argument("--tokenizer", default="minilm", help="Whose sub-word facts to correlate with.")
    parser.add_argument("--fact", action="append", default=[],
                        help="Another column of the facts CSV to correlate with (repeatable), e.g. "
                             "resplit_words_test, the share of test words trimming re-splits; or "
                             f"{FROM_ROWS}, the language's baseline test F1 from the rows.")
    parser.add_argument("--csv", help="Also write the table's rows here.")
    args = parser.parse_args()
    names = FACTS + tuple(args.fact)

    loss_by_method, baselines = deltas(args.sources)
    facts: dict[str, dict[str, float]] = {}
    with open(args.facts, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["tokenizer"] == args.tokenizer:
                lang = row["lang"]
                facts[lang] = {name: baselines.get(lang, float("nan")) if name == FROM_ROWS else float(row[name])
                               for name in names}
    table = []
    for recipe, by_lang in sorted(loss_by_method.items()):
        langs = sorted((lang for lang in by_lang if lang in facts), key=by_lang.get)
        loss = [by_lang[lang] for lang in langs]
        line = {"method": recipe, "languages": len(langs),
                "worst_first": " ".join(f"{lang} {by_lang[lang]:+.2f}" for lang in langs)}
        for name in names:
            rho, p = spearmanr(loss, [facts[lang][name] for lang in langs])
            line[f"rho_{name}"], line[f"p_{name}"] = round(float(rho), 2), round(float(p), 3)
        table.append(line)

    extra = "".join(f" | ρ with {name} (p)" for name in args.fact)
    print("| method | languages | test ΔF1, worst first | ρ with training sentences (p) "
          f"| ρ with sub-words per word (p){extra} |")
    print("|---|---:|---|---:|---:|" + "---:|" * len(args.fact))
    for line in table:
        print(f"| {line['method']} | {line['languages']} | {line['worst_first']} | "
              + " | ".join(f"{line[f'rho_{name}']:+.2f} ({line[f'p_{name}']:.3f})" for name in names) + " |")
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)


if __name__ == "__main__":
    main()
