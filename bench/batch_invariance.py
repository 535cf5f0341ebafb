"""How often a model's entities for a text change with the batch it runs in (batch 1 against batch 32).

A float model's outputs for a text do not depend on the other texts of its
batch (padding is masked). ONNX Runtime's dynamic int8 quantization computes one
activation scale per tensor, that is per batch, so an int8 model's scores, and
now and then its entities, move with the company a text keeps. `ndogo serve`
batches concurrent requests, so this is the size of that effect on real text.

    nice -n 19 .venv/bin/python bench/batch_invariance.py BUNDLE --data ../shared/data/masakhaner --lang luo
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import ndogo
from ndogo.data.conll import read_conll


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("--data", default="../shared/data/masakhaner")
    parser.add_argument("--lang", default="luo")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    texts = [" ".join(s.tokens) for s in read_conll(Path(args.data) / args.lang / f"{args.split}.txt").sentences]
    predictor = ndogo.load(args.bundle, threads=1)
    alone = [predictor.predict([t])[0] for t in texts]
    batched = [e for k in range(0, len(texts), 32) for e in predictor.predict(texts[k : k + 32])]
    spans = [([(e.label, e.start, e.end) for e in a], [(e.label, e.start, e.end) for e in b])
             for a, b in zip(alone, batched, strict=True)]
    changed = sum(a != b for a, b in spans)
    diffs = [abs(x.score - y.score) for a, b in zip(alone, batched, strict=True) if len(a) == len(b)
             for x, y in zip(a, b, strict=True)]
    kind = getattr(predictor, "kind", None) or predictor.runner.kind
    print(json.dumps({"bundle": args.bundle, "kind": kind, "sentences": len(texts),
                      "entities_alone": sum(len(a) for a, _ in spans),
                      "entities_batched": sum(len(b) for _, b in spans),
                      "sentences_whose_entities_change": changed,
                      "max_score_change": round(max(diffs, default=0.0), 6)}))


if __name__ == "__main__":
    main()
