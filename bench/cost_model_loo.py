"""The cost model's own leave-one-language-out check, fitted on one atlas or on several together.

`ndogo recommend --lang L` (no rows for L) fits, per method, a ridge regression of the F1 change on
cheap facts and states its leave-one-language-out error beside the plainest rival, the other
languages' mean change; the smaller of the two predicts. This prints that check for every method,
fitted first on the first source alone and then on all sources together (e.g. step a's MasakhaNER
1.0 languages, then those plus step c's MasakhaNER 2.0 ones), so one can see whether more
languages let the facts beat the mean:

    python bench/cost_model_loo.py docs/bench/atlas-minilm.csv docs/bench/atlas-mnr2.csv \
        --csv docs/bench/cost-model-loo.csv

Each known language's facts are read from the corpus its rows name (ndogo.report.predict_cost's
find_corpus; a language on two corpora counts twice, as `wol` and `wol@masakhaner2`). The new
language's facts do not enter these errors, so any language stands in for it.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from ndogo.experiments.store import base_lang, load_sources
from ndogo.models.loading import load_tokenizer
from ndogo.report.predict_cost import find_corpus, language_facts, predict_costs


def check(sources: list[Path], model: str, near: list[Path]) -> list[dict]:
    """One line per method: languages, the facts' and the mean's leave-one-out error, the predictor chosen."""
    rows = [r for r in load_sources(sources) if r.get("model") == model]
    tokenizer = load_tokenizer(model)
    facts = {}
    for lang in sorted({r["lang"] for r in rows}):
        root = next((r for r in (find_corpus(rows, lang, near=n) for n in near) if r is not None), None)
        if root is not None:
            facts[lang] = language_facts(root, base_lang(lang), tokenizer)
    stand_in = next(iter(facts.values()))
    return [{"fitted_on": " + ".join(p.name for p in sources), "recipe": c.recipe, "languages": len(c.languages),
             "facts_loo_mae": round(c.facts_loo_mae, 2) if c.facts_loo_mae is not None else None,
             "mean_loo_mae": round(c.mean_loo_mae, 2) if c.mean_loo_mae is not None else None,
             "predictor": c.predictor}
            for c in predict_costs(rows, facts, stand_in, model)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", type=Path, nargs="+",
                        help="CSVs (or sweep folders) of atlas rows; the first is also fitted alone")
    parser.add_argument("--model", default="minilm", help="which model's rows (default: minilm)")
    parser.add_argument("--near", type=Path, action="append",
                        help="a corpus root beside (or in) which to look for a corpus a row names but this machine "
                             "lacks (repeatable; default: ../shared/data/masakhaner and masakhaner2)")
    parser.add_argument("--csv", type=Path, help="write the lines here")
    args = parser.parse_args()

    near = args.near or [Path("../shared/data/masakhaner"), Path("../shared/data/masakhaner2")]
    fits = [args.sources[:1]] + ([args.sources] if len(args.sources) > 1 else [])
    out = [line for sources in fits for line in check(sources, args.model, near)]
    if args.csv:
        with open(args.csv, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(out[0]))
            writer.writeheader()
            writer.writerows(out)
    print("| fitted on | method | languages | facts' LOO error | mean's LOO error | predicts |")
    print("|---|---|---:|---:|---:|---|")
    for line in out:
        print(f"| {line['fitted_on']} | {line['recipe']} | {line['languages']} | {line['facts_loo_mae']} | "
              f"{line['mean_loo_mae']} | {line['predictor']} |")


if __name__ == "__main__":
    main()
