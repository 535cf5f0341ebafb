"""The cost model checked on languages it never saw: fit on one atlas, predict another, compare.

`ndogo recommend --lang L` for a language with no rows predicts each method's ΔF1 from the
atlas's rows (ndogo.report.predict_cost) and states its leave-one-language-out error. That error
is measured on the atlas's own languages; this script asks the harder question: fitted on every
MasakhaNER 1.0 language of step a, how far off is the prediction for each MasakhaNER 2.0 language
that step c has since measured, and does the stated error cover it? A language both corpora hold
(wol) is left out: the fit has seen it.

    python bench/lab/predict_check.py docs/bench/atlas-minilm.csv ../shared/data/masakhaner \
        docs/bench/atlas-mnr2.csv ../shared/data/masakhaner2 --csv docs/bench/predict-check.csv

`--fit-also CSV` adds more rows to the fit (their languages labelled as `ndogo recommend --also`
labels them, `wol@masakhaner2`), which makes the check prospective: fit on the rows committed before
some languages ran, predict those languages from their rows measured since. The new rows' file then
holds every language of its corpus, so only the languages whose language the fit has not seen on
any corpus are predicted:

    git show 309f2f6:docs/bench/atlas-mnr2.csv > /tmp/mnr2-2026-12-04.csv
    python bench/lab/predict_check.py docs/bench/atlas-minilm.csv ../shared/data/masakhaner \
        docs/bench/atlas-mnr2.csv ../shared/data/masakhaner2 --fit-also /tmp/mnr2-2026-12-04.csv \
        --csv docs/bench/predict-check-prospective.csv

One row per (new language, method both atlases ran): the predictor the model chose (facts or
mean), the prediction, its stated error, the measured test ΔF1 and the miss. It then prints, per
method, the mean miss beside the stated error and how many languages fell within it. The MasakhaNER
2.0 baselines train 5 epochs on larger corpora, so part of any miss is the corpus, not the language:
the check is pessimistic for the model, never flattering.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections import defaultdict
from pathlib import Path

from ndogo.experiments.store import base_lang, load_rows, load_sources
from ndogo.models.loading import load_tokenizer
from ndogo.report.predict_cost import find_corpus, language_facts, predict_costs
from ndogo.report.summary import BASELINE, summarize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("known", type=Path, help="CSV (or sweep folder) of the atlas the model is fitted on")
    parser.add_argument("known_data", type=Path, help="the corpus the known rows were measured on")
    parser.add_argument("new", type=Path, help="CSV (or sweep folder) of the languages to predict")
    parser.add_argument("new_data", type=Path, help="the corpus the new rows were measured on")
    parser.add_argument("--model", default="minilm", help="which model's rows (default: minilm)")
    parser.add_argument("--fit-also", type=Path, action="append", default=[],
                        help="more rows the fit reads (repeatable), each language's facts read from the corpus "
                             "its rows name, e.g. the new atlas's CSV as committed before its newest languages ran")
    parser.add_argument("--csv", type=Path, help="write the rows here")
    parser.add_argument("--rows", action="store_true", help="also print every prediction beside its measurement")
    args = parser.parse_args()

    known = [r for r in load_sources([args.known, *args.fit_also]) if r.get("model") == args.model]
    new = [r for r in load_rows(args.new) if r.get("model") == args.model]
    tokenizer = load_tokenizer(args.model)
    known_facts = {}
    for label in sorted({r["lang"] for r in known}):
        root = next((c for c in (find_corpus(known, label, near=n, fallback=args.known_data)
                                 for n in (args.known_data, args.new_data)) if c), None)
        if root is None:
            raise SystemExit(f"no corpus found here for {label}'s rows "
                             f"(looked beside {args.known_data} and {args.new_data})")
        known_facts[label] = language_facts(root, base_lang(label), tokenizer)
    measured = {(s.lang, s.recipe): s.delta for s in summarize(new) if s.recipe != BASELINE and s.delta is not None}

    out = []
    fitted = {base_lang(label) for label in known_facts}
    seen = sorted({r["lang"] for r in new} & fitted)
    if seen:  # the same language is in the fit (on either corpus): predicting it is no test of the model
        print(f"left out, the fit has seen them: {', '.join(seen)}")
    for lang in sorted({r["lang"] for r in new} - fitted):
        facts = language_facts(args.new_data, lang, tokenizer)
        for p in predict_costs(known, known_facts, facts, args.model):
            if (lang, p.recipe) not in measured:
                continue
            got = measured[(lang, p.recipe)]
            miss = abs(p.predicted_delta - got)
            out.append({"lang": lang, "recipe": p.recipe, "predictor": p.predictor,
                        "predicted": round(p.predicted_delta, 2), "stated_error": round(p.loo_mae or 0.0, 2),
                        "measured": round(got, 2), "miss": round(miss, 2),
                        "within": miss <= (p.loo_mae or 0.0), "extrapolated": ",".join(p.outside),
                        "known_languages": len(p.languages)})

    if args.csv:
        with open(args.csv, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(out[0]))
            writer.writeheader()
            writer.writerows(out)
    by_recipe: dict[str, list[dict]] = defaultdict(list)
    for row in out:
        by_recipe[row["recipe"]].append(row)
    print(f"fitted on {out[0]['known_languages']} languages of {args.known}; "
          f"predicted {len({r['lang'] for r in out})} of {args.new}")
    print("| method | predictor | languages | stated error (LOO) | mean miss | within stated error |")
    print("|---|---|---:|---:|---:|---:|")
    for recipe, rows in by_recipe.items():
        print(f"| {recipe} | {rows[0]['predictor']} | {len(rows)} | {rows[0]['stated_error']:.2f} | "
              f"{statistics.fmean(r['miss'] for r in rows):.2f} | {sum(r['within'] for r in rows)}/{len(rows)} |")
    if args.rows:
        print("\n| language | method | predictor | predicted ΔF1 | stated error | measured ΔF1 | miss | within |")
        print("|---|---|---|---:|---:|---:|---:|---|")
        for r in out:
            print(f"| {r['lang']} | {r['recipe']} | {r['predictor']} | {r['predicted']:+.2f} | "
                  f"{r['stated_error']:.2f} | {r['measured']:+.2f} | {r['miss']:.2f} | "
                  f"{'yes' if r['within'] else 'no'} |")
    total = sum(r["within"] for r in out)
    print(f"\nall methods: {total}/{len(out)} predictions within their stated error")


if __name__ == "__main__":
    main()
