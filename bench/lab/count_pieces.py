"""Sub-word pieces a model's tokenizer makes of a language's test sentences (the first N).

Says whether a trimmed vocabulary lengthens a language's inputs (which would cost speed):

    python bench/lab/count_pieces.py ../shared/data/masakhaner yor MODEL_DIR [MODEL_DIR ...] --sentences 200
"""

from __future__ import annotations

import argparse

from tokenizers import Tokenizer

from ndogo.data.corpus import load_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("lang")
    parser.add_argument("models", nargs="+", help="model directories holding tokenizer.json")
    parser.add_argument("--sentences", type=int, default=200)
    args = parser.parse_args()
    words = [s.tokens for s in load_corpus(args.data, args.lang, ("test",)).splits["test"]][: args.sentences]
    print(f"| model | pieces in {len(words)} {args.lang} test sentences |")
    print("|---|---:|")
    for model in args.models:
        tokenizer = Tokenizer.from_file(f"{model}/tokenizer.json")
        pieces = sum(len(tokenizer.encode(w, is_pretokenized=True).ids) for w in words)
        print(f"| `{model}` | {pieces} |")


if __name__ == "__main__":
    main()
