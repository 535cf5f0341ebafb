"""How often a model's entities for a text change with the batch it runs in (batch 1 against batch 32).

A float model's outputs for a text do not depend on the other texts of its batch (padding is
masked). ONNX Runtime's dynamic int8 quantization computes one activation scale per tensor,
that is per batch, so an int8 model's scores, and now and then its entities, move with the
company a text keeps. `ndogo serve` batches concurrent requests, so this is the size of that
effect on real text, with test F1 scored at both batch sizes beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ndogo.bench import machine


def batch_invariance(model: str | Path, data: str | None, lang: str, split: str = "test", f1: bool = True,
                     threads: int = 1) -> dict[str, Any]:
    """One row: entities of each sentence alone against in batches of 32, and F1 at both batch sizes.

    The columns of docs/bench/batch-invariance.csv (model, kind, sentences, entities_alone,
    entities_batched, sentences_whose_entities_change, max_score_change, test_f1_batch_size_1,
    test_f1_batch_size_32; F1 on the split scored, as `ndogo evaluate --batch-size`), then the
    machine: int8 kernels differ between CPUs.
    """
    from ndogo.data.corpus import load_corpus
    from ndogo.deploy import load

    if not Path(model).is_dir():
        raise FileNotFoundError(2, "No such directory", str(model))
    texts = [" ".join(s.tokens) for s in load_corpus(data, lang, (split,)).require(split, "the batch check")]
    predictor = load(model, threads=threads)
    alone = [predictor.predict([t])[0] for t in texts]
    batched = [e for k in range(0, len(texts), 32) for e in predictor.predict(texts[k : k + 32])]
    spans = [([(e.label, e.start, e.end) for e in a], [(e.label, e.start, e.end) for e in b])
             for a, b in zip(alone, batched, strict=True)]
    diffs = [abs(x.score - y.score) for a, b in zip(alone, batched, strict=True) if len(a) == len(b)
             for x, y in zip(a, b, strict=True)]
    kind = getattr(predictor, "kind", None) or predictor.runner.kind
    row: dict[str, Any] = {
        "model": str(model), "kind": kind, "sentences": len(texts),
        "entities_alone": sum(len(a) for a, _ in spans), "entities_batched": sum(len(b) for _, b in spans),
        "sentences_whose_entities_change": sum(a != b for a, b in spans),
        "max_score_change": round(max(diffs, default=0.0), 6),
        f"{split}_f1_batch_size_1": "", f"{split}_f1_batch_size_32": ""}
    if f1:
        from ndogo.evaluate import evaluate

        for size in (1, 32):
            scored = evaluate(model, data, lang, split, batch_size=size, speed=False, threads=threads, device="cpu")
            row[f"{split}_f1_batch_size_{size}"] = round(scored["f1"], 4)
    return {**row, **machine()}
