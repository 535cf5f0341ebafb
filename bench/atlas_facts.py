"""The atlas's per-language facts: data size, entity density and how each tokenizer reads the language.

    python bench/atlas_facts.py ../shared/data/masakhaner --tokenizer minilm --tokenizer me5s \\
        --csv docs/bench/atlas-facts.csv

Prints one markdown table (a row per language and tokenizer) and writes the same rows as CSV.
These are the cheap facts the atlas reads every compression result against (docs/results.md).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from ndogo.console import quiet_libraries

SCRIPTS = {"amh": "Ge'ez"}  # every other MasakhaNER language is written in Latin script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a corpus root in the MasakhaNER layout")
    parser.add_argument("--tokenizer", action="append", default=[], help="model whose tokenizer to measure")
    parser.add_argument("--lang", help="only these languages, comma-separated")
    parser.add_argument("--csv", type=Path, help="also write the rows here")
    args = parser.parse_args()
    quiet_libraries()
    from ndogo.data.corpus import load_local
    from ndogo.data.stats import directory_stats
    from ndogo.data.tokenization import tokenizer_facts
    from ndogo.models.loading import load_tokenizer

    langs = args.lang.split(",") if args.lang else None
    stats = directory_stats(args.data, langs)
    tokenizers = {name: load_tokenizer(name) for name in args.tokenizer}
    rows = []
    for lang, entry in stats.items():
        train = entry["splits"].get("train", {})
        corpus = load_local(args.data, lang, ("train", "test"))
        words = {s: [x.tokens for x in corpus.splits.get(s, [])] for s in ("train", "test")}
        for name, tok in tokenizers.items():
            facts = tokenizer_facts(tok, words["train"], words["test"])
            rows.append({"lang": lang, "script": SCRIPTS.get(lang, "Latin"),
                         "train_sentences": train.get("sentences", 0), "train_tokens": train.get("tokens", 0),
                         "train_entities": train.get("entities", 0),
                         "entities_per_100_tokens": round(100 * train.get("entities", 0)
                                                          / max(train.get("tokens", 1), 1), 2),
                         "tokenizer": name, **facts})
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if h in ("lang", "script", "tokenizer") else "---:" for h in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(row[h]) for h in header) + " |")
    if args.csv:
        with args.csv.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
