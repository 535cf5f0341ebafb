"""The cost model's own check on the committed atlas: each predictor's leave-one-language-out error.

`ndogo recommend --lang L` (no rows for L) predicts each method's ΔF1 by one of two predictors: a
ridge regression on cheap language facts, or the other languages' mean change, whichever has the
lower leave-one-language-out error (ndogo.report.predict_cost). This prints, for every method and
model, both predictors' errors, which one the rule picks, and the error of that whole procedure
measured outside its choice (nested leave-one-language-out: each held-out language predicted by the
predictor the other languages' own check picked). The nested error is the one `recommend` prints
beside a prediction; the gap between it and the lower of the two plain errors is what choosing by
the same error would have hidden.

One command regenerates the committed CSV from the committed atlas rows (tests/test_predict_cost.py
fails when the two disagree):

    python bench/cost_model_loo.py --csv docs/bench/cost-model-loo.csv

Fits: minilm on MasakhaNER 1.0 alone, then with MasakhaNER 2.0 (a language on both corpora counts
twice, as `wol` and `wol@masakhaner2`); me5s on MasakhaNER 1.0. Each known language's facts are read
from the corpus its rows name (find_corpus, as recommend does), looked for beside --near.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from ndogo.experiments.store import base_lang, load_sources
from ndogo.models.loading import load_tokenizer
from ndogo.report.predict_cost import find_corpus, language_facts, predict_costs

BENCH = Path(__file__).resolve().parent.parent / "docs" / "bench"
# (model, the CSVs fitted together): every fit the committed CSV holds
FITS = (("minilm", ("atlas-minilm.csv",)), ("minilm", ("atlas-minilm.csv", "atlas-mnr2.csv")),
        ("me5s", ("atlas-me5s.csv",)))
COLUMNS = ("model", "fitted_on", "recipe", "languages", "facts_loo_mae", "mean_loo_mae", "predictor", "nested_mae")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def check(sources: list[Path], model: str, near: list[Path]) -> list[dict]:
    """One line per method: languages, both predictors' errors, the one picked, the error measured outside the pick."""
    rows = [r for r in load_sources(sources) if r.get("model") == model]
    tokenizer = load_tokenizer(model)
    facts = {}
    for lang in sorted({r["lang"] for r in rows}):
        root = next((r for r in (find_corpus(rows, lang, near=n) for n in near) if r is not None), None)
        if root is None:
            raise SystemExit(f"no corpus here for {lang}'s rows (looked beside {', '.join(map(str, near))})")
        facts[lang] = language_facts(root, base_lang(lang), tokenizer)
    stand_in = next(iter(facts.values()))  # the new language's facts enter none of these errors
    return [{"model": model, "fitted_on": " + ".join(p.name for p in sources), "recipe": c.recipe,
             "languages": len(c.languages), "facts_loo_mae": _round(c.facts_loo_mae),
             "mean_loo_mae": _round(c.mean_loo_mae), "predictor": c.predictor, "nested_mae": _round(c.loo_mae)}
            for c in predict_costs(rows, facts, stand_in, model)]


def all_checks(bench: Path = BENCH, near: list[Path] | None = None) -> list[dict]:
    """Every fit of FITS, from the CSVs in `bench`."""
    root = bench.parent.parent
    near = near or [root.parent / "shared" / "data" / "masakhaner", root.parent / "shared" / "data" / "masakhaner2"]
    return [line for model, names in FITS for line in check([bench / n for n in names], model, near)]


def write(lines: list[dict], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", type=Path, default=BENCH, help="the folder of atlas CSVs (default: docs/bench)")
    parser.add_argument("--near", type=Path, action="append",
                        help="a corpus root beside (or in) which to look for a corpus a row names but this machine "
                             "lacks (repeatable; default: ../shared/data/masakhaner and masakhaner2)")
    parser.add_argument("--csv", type=Path, help="write the lines here")
    args = parser.parse_args()
    out = all_checks(args.bench, args.near)
    if args.csv:
        write(out, args.csv)
    print("| model | fitted on | method | languages | facts' LOO error | mean's LOO error | picks "
          "| error outside the pick |")
    print("|---|---|---|---:|---:|---:|---|---:|")
    for line in out:
        print(f"| {line['model']} | {line['fitted_on']} | {line['recipe']} | {line['languages']} | "
              f"{line['facts_loo_mae']} | {line['mean_loo_mae']} | {line['predictor']} | {line['nested_mae']} |")


if __name__ == "__main__":
    main()
