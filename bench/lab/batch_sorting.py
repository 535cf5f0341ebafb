"""Does batching pay once a batch holds sentences of similar length? Bare throughput, random vs sorted.

`ndogo serve` micro-batches requests as they arrive, so a batch pads every sentence to the
longest one. This measures the bundle's raw-text throughput (torch-free runtime, one thread) at
batch sizes 1..32 with every test sentence once, batched in corpus order or by length, to say whether a
length-bucketing batcher could beat batch 1 on this CPU.

    python bench/lab/batch_sorting.py BUNDLE --data ../shared/data/masakhaner --lang luo
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path
from typing import Any

from ndogo.data.corpus import load_corpus
from ndogo.deploy.runtime import load


def rate(predictor: Any, texts: list[str], batch: int, by_length: bool) -> float:
    """Sentences/s over every test sentence once, in batches of `batch`.

    Sorted batches are taken in a shuffled order, so short and long batches mix as in corpus order.
    """
    ordered = sorted(texts, key=len) if by_length else texts
    batches = [ordered[i:i + batch] for i in range(0, len(ordered), batch)]
    if by_length:
        random.Random(0).shuffle(batches)
    t0 = time.perf_counter()
    for chunk in batches:
        predictor.predict(chunk)
    return len(texts) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle")
    parser.add_argument("--data", default="../shared/data/masakhaner")
    parser.add_argument("--lang", default="luo")
    parser.add_argument("--batches", default="1,4,8,32")
    parser.add_argument("--csv", type=Path, help="also write the rows here")
    args = parser.parse_args()
    texts = [" ".join(s.tokens) for s in load_corpus(args.data, args.lang, ("test",)).splits["test"]]
    predictor = load(args.bundle, batch_size=64, threads=1)
    predictor.predict(texts[:8])  # warm-up
    print("| batch | order | sentences/s |")
    print("|---:|---|---:|")
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        for order, by_length in (("corpus", False), ("by length", True)):
            rows.append({"batch": batch, "order": order, "sentences_per_s": round(rate(predictor, texts, batch,
                                                                                         by_length), 1)})
            print(f"| {batch} | {order} | {rows[-1]['sentences_per_s']} |", flush=True)
    if args.csv:
        with args.csv.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
