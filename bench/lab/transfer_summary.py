"""Zero-shot transfer of pruned models, in two small tables instead of one per language.

`ndogo prune-sweep --transfer` writes a row per (pruned model, evaluation language) to
OUT/sweep.csv: with nine languages and five sparsities that is 405 rows, too many to read. This
prints (1) per sparsity, the own-language F1 and the zero-shot F1 over every ordered pair of
different languages (mean, min, max), each as a share of the dense model's, and (2) per
evaluation language, the zero-shot F1 it receives from the others, dense and at each sparsity:
which languages borrow best from their neighbours and how fast that goes when pruning.

    python bench/lab/transfer_summary.py docs/bench/atlas-transfer.csv

Only a view of rows: a mean, a min and a max, so it is written here and not in ndogo.report.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections import defaultdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", help="OUT/sweep.csv of `ndogo prune-sweep --transfer` (or its committed copy).")
    args = parser.parse_args()

    own: dict[float, list[float]] = defaultdict(list)
    zero: dict[float, list[float]] = defaultdict(list)
    received: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    with open(args.csv, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if int(float(row["recover_epochs"] or 0)) != 0 or not row["f1"]:
                continue
            sparsity, f1 = round(float(row["sparsity"]), 2), 100 * float(row["f1"])
            if row["model_lang"] == row["eval_lang"]:
                own[sparsity].append(f1)
            else:
                zero[sparsity].append(f1)
                received[row["eval_lang"]][sparsity].append(f1)
    sparsities = sorted(own)
    if not sparsities or 0.0 not in own:
        raise SystemExit(f"{args.csv}: no dense (sparsity 0) rows to compare against")
    dense_own, dense_zero = statistics.mean(own[0.0]), statistics.mean(zero[0.0])

    print("| sparsity | models | own-language F1 (mean) | of dense | zero-shot F1 (mean [min … max]) | of dense |")
    print("|---:|---:|---:|---:|---:|---:|")
    for s in sparsities:
        o, z = statistics.mean(own[s]), zero[s]
        print(f"| {s:.0%} | {len(own[s])} | {o:.2f} | {o / dense_own:.0%} | "
              f"{statistics.mean(z):.2f} [{min(z):.2f} … {max(z):.2f}] | {statistics.mean(z) / dense_zero:.0%} |")
    print()
    print("| evaluated on | " + " | ".join(f"zero-shot F1 at {s:.0%}" for s in sparsities) + " |")
    print("|---|" + "---:|" * len(sparsities))
    for lang in sorted(received, key=lambda code: -statistics.mean(received[code][0.0])):
        cells = " | ".join(f"{statistics.mean(received[lang][s]):.2f}" for s in sparsities)
        print(f"| {lang} | {cells} |")


if __name__ == "__main__":
    main()
