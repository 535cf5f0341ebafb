"""How often a model's predictions for a text change with the batch it runs in (batch 1 against batch 32).

A float model's outputs for a text do not depend on the other texts of its batch (padding is
masked). ONNX Runtime's dynamic int8 quantization computes one activation scale per tensor,
that is per batch, so an int8 model's scores, and now and then its predictions, move with the
company a text keeps. `ndogo serve` batches concurrent requests, so this is the size of that
effect on real text, with the task's headline metric scored at both batch sizes beside it.

What is compared is what the model's task predicts: a NER model's entities (label and span),
a POS tagger's tag of each word, a classifier's label of each text. The corpus is read as the
model's task reads it, as `ndogo evaluate` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ndogo.bench import corpus_texts, machine


def _held(output: str, prediction: Any) -> list[tuple[Any, ...]]:
    """What one text's prediction says, as comparable tuples: entities, tagged words, or its label."""
    if output == "entities":
        return [(e.label, e.start, e.end) for e in prediction]
    if output == "tags":
        return [(w.tag, w.start, w.end) for w in prediction]
    return [(prediction.label,)]


def _scores(output: str, prediction: Any) -> list[float]:
    return [prediction.score] if output == "label" else [x.score for x in prediction]


# Per prediction kind: the column the command shows as "changed", and what it calls the predictions
CHANGED = {"entities": ("sentences_whose_entities_change", "entities"), "tags": ("words_whose_tag_changes", "tags"),
           "label": ("texts_whose_label_changes", "labels")}


def shown_columns(row: dict[str, Any], split: str) -> tuple[str, dict[str, str]]:
    """What a row's table calls its predictions, and its columns to show (key: heading), by the task it measured."""
    from ndogo.tasks import TASKS, task_names

    changed, unit = next(v for v in CHANGED.values() if v[0] in row)
    metric = next(k for k in row if k.startswith(f"{split}_") and k.endswith("_batch_size_1"))
    key = metric.removeprefix(f"{split}_").removesuffix("_batch_size_1")
    name = next((TASKS[t].metric_label for t in task_names() if TASKS[t].metric == key), key)
    return unit, {"model": "model", "kind": "kind", "sentences": "sentences", changed: "changed",
                  "max_score_change": "max score change", metric: f"{name} b1",
                  metric.removesuffix("_1") + "_32": f"{name} b32"}


def _counts(output: str, held: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]) -> dict[str, int]:
    """The columns that count what changed, named after what the task predicts.

    NER keeps the columns of docs/bench/batch-invariance.csv. A tagger's words are the same alone and
    batched, so it counts the words whose tag moves; a classifier has one label a text.
    """
    changed = sum(a != b for a, b in held)
    if output == "entities":
        return {"entities_alone": sum(len(a) for a, _ in held), "entities_batched": sum(len(b) for _, b in held),
                "sentences_whose_entities_change": changed}
    if output == "tags":
        return {"words": sum(len(a) for a, _ in held),
                "words_whose_tag_changes": sum(x != y for a, b in held for x, y in zip(a, b, strict=True)),
                "sentences_whose_tags_change": changed}
    return {"texts_whose_label_changes": changed}


def batch_invariance(model: str | Path, data: str | None, lang: str, split: str = "test", f1: bool = True,
                     threads: int = 1) -> dict[str, Any]:
    """One row: each text's predictions alone against in batches of 32, and the task's metric at both sizes.

    For NER, the columns of docs/bench/batch-invariance.csv (model, kind, sentences, entities_alone,
    entities_batched, sentences_whose_entities_change, max_score_change, test_f1_batch_size_1,
    test_f1_batch_size_32; F1 on the split scored, as `ndogo evaluate --batch-size`). For a POS
    tagger the counts are words, words_whose_tag_changes and sentences_whose_tags_change; for a
    classifier texts_whose_label_changes; the metric columns are named by the task's metric
    (`test_accuracy_batch_size_1`). Then the machine: int8 kernels differ between CPUs.
    `f1`: also score the metric (the name is the CLI flag's, `--f1`).
    """
    from ndogo.deploy import load

    if not Path(model).is_dir():
        raise FileNotFoundError(2, "No such directory", str(model))
    task, _, texts = corpus_texts(model, data, lang, split, "the batch check")
    predictor = load(model, threads=threads)
    output = getattr(predictor, "output", task.output)
    alone = [predictor.predict([t])[0] for t in texts]
    batched = [p for k in range(0, len(texts), 32) for p in predictor.predict(texts[k : k + 32])]
    held = [(_held(output, a), _held(output, b)) for a, b in zip(alone, batched, strict=True)]
    diffs: list[float] = []
    for a, b in zip(alone, batched, strict=True):
        before, after = _scores(output, a), _scores(output, b)
        if len(before) == len(after):  # entities found alone and batched alike: their scores pair up
            diffs += [abs(x - y) for x, y in zip(before, after, strict=True)]
    kind = getattr(predictor, "kind", None) or predictor.runner.kind
    metric = f"{split}_{task.metric}_batch_size"
    row: dict[str, Any] = {"model": str(model), "kind": kind, "sentences": len(texts), **_counts(output, held),
                           "max_score_change": round(max(diffs, default=0.0), 6), f"{metric}_1": "", f"{metric}_32": ""}
    if f1:
        from ndogo.evaluate import evaluate

        for size in (1, 32):
            scored = evaluate(model, data, lang, split, batch_size=size, speed=False, threads=threads, device="cpu")
            row[f"{metric}_{size}"] = round(scored[task.metric], 4)
    return {**row, **machine()}
