"""The atlas's per-language facts: data size, entity density and how each tokenizer reads the language.

    python bench/atlas_facts.py ../shared/data/masakhaner --tokenizer minilm --tokenizer me5s \\
        --trim minilm=9500 --trim me5s=16000 --csv docs/bench/atlas-facts.csv
    python bench/atlas_facts.py ../shared/data/masakhaner2 --tokenizer minilm --trim minilm=9500 \\
        --csv docs/bench/atlas-facts-mnr2.csv

Prints one markdown table (a row per language and tokenizer) and writes the same rows as CSV.
These are the cheap facts the atlas reads every compression result against (docs/lab/results-log-2026-11-to-12.md §10);
`ndogo report --facts` shows them on the atlas page. `--trim MODEL=KEEP` adds the share of test
words that the atlas's trim + int8 recipe re-splits (its trimmed vocabulary of KEEP sub-words,
counted on the language's text and then the other languages' in --corpus, as the sweeps trim),
rebuilt from the tokenizer alone: the trimmed models need not be on disk. About 15 s a language.
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
    parser.add_argument("--trim", action="append", default=[], metavar="MODEL=KEEP",
                        help="also measure what the atlas's trimming (keep=KEEP, other_langs) re-splits for MODEL")
    parser.add_argument("--corpus", default="../shared/data/monolingual",
                        help="the monolingual folder trimming counts (default: ../shared/data/monolingual)")
    parser.add_argument("--csv", type=Path, help="also write the rows here")
    args = parser.parse_args()
    keeps = {}
    for pair in args.trim:
        name, sep, keep = pair.partition("=")
        if not sep or not keep.isdigit():
            parser.error(f"--trim {pair!r}: expected MODEL=KEEP, e.g. minilm=9500")
        keeps[name] = int(keep)
    quiet_libraries()
    from ndogo.compress.trim import TrimConfig, trimmed_tokenizer
    from ndogo.data.corpus import load_local
    from ndogo.data.stats import directory_stats
    from ndogo.data.tokenization import resplit_share, tokenizer_facts
    from ndogo.experiments.store import corpus_name
    from ndogo.models.loading import load_tokenizer

    langs = args.lang.split(",") if args.lang else None
    corpus_of_rows = corpus_name(str(args.data.resolve()))
    stats = directory_stats(args.data, langs)
    tokenizers = {name: load_tokenizer(name) for name in args.tokenizer}
    rows = []
    for lang, entry in stats.items():
        train = entry["splits"].get("train", {})
        corpus = load_local(args.data, lang, ("train", "test"))
        words = {s: [x.tokens for x in corpus.splits.get(s, [])] for s in ("train", "test")}
        for name, tok in tokenizers.items():
            facts = tokenizer_facts(tok, words["train"], words["test"])
            if name in keeps:  # the trim of configs/atlas-*.toml, rebuilt from the tokenizer (no model)
                trimmed = trimmed_tokenizer(tok, TrimConfig(lang=lang, data=str(args.data), corpus=args.corpus,
                                                            other_langs=True, keep=keeps[name]))
                facts["resplit_words_test"] = resplit_share(tok, trimmed, words["test"])
            rows.append({"lang": lang, "corpus": corpus_of_rows, "script": SCRIPTS.get(lang, "Latin"),
                         "train_sentences": train.get("sentences", 0), "train_tokens": train.get("tokens", 0),
                         "train_entities": train.get("entities", 0),
                         "entities_per_100_tokens": round(100 * train.get("entities", 0)
                                                          / max(train.get("tokens", 1), 1), 2),
                         "tokenizer": name, **facts})
    header = list(dict.fromkeys(k for row in rows for k in row))
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if h in ("lang", "corpus", "script", "tokenizer") else "---:" for h in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(row.get(h, "")) for h in header) + " |")
    if args.csv:
        with args.csv.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
