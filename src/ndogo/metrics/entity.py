"""Entity-level precision, recall and F1, exactly as seqeval's default mode computes them.

seqeval's default (conlleval-compatible) mode is what MasakhaNER reports, so we
call it rather than re-implement chunking: identical numbers by construction.
"""

from __future__ import annotations

from typing import Any

from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from ndogo.data.conll import Sentence


class AlignmentError(ValueError):
    """Gold and predicted files do not describe the same sentences."""


def score(gold: list[list[str]], pred: list[list[str]]) -> dict[str, Any]:
    """Micro F1/precision/recall over entities and the same per entity type."""
    if len(gold) != len(pred):
        raise AlignmentError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    for i, (g, p) in enumerate(zip(gold, pred, strict=True), start=1):
        if len(g) != len(p):
            raise AlignmentError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
    if not any(t != "O" for seq in gold + pred for t in seq):
        # seqeval warns and divides by zero here; no entities anywhere scores 0.
        return {"f1": 0.0, "precision": 0.0, "recall": 0.0, "per_type": {}}
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    per_type = {
        name: {
            "f1": float(v["f1-score"]),
            "precision": float(v["precision"]),
            "recall": float(v["recall"]),
            "support": int(v["support"]),
        }
        for name, v in report.items()
        if not name.endswith(" avg")
    }
    return {
        "f1": float(f1_score(gold, pred, zero_division=0)),
        "precision": float(precision_score(gold, pred, zero_division=0)),
        "recall": float(recall_score(gold, pred, zero_division=0)),
        "per_type": per_type,
    }


def check_aligned(gold: list[Sentence], pred: list[Sentence]) -> None:
    """Raise `AlignmentError` naming the first sentence where the two files differ.

    Nothing is shifted or padded: a misaligned prediction file means every
    later entity would be compared with the wrong gold one.
    """
    for i, (g, p) in enumerate(zip(gold, pred, strict=False), start=1):
        if len(g) != len(p):
            raise AlignmentError(
                f"sentence {i} (gold line {g.line}, predicted line {p.line}): "
                f"{len(g)} gold tokens but {len(p)} predicted"
            )
        for j, (gt, pt) in enumerate(zip(g.tokens, p.tokens, strict=True)):
            if gt != pt:
                raise AlignmentError(
                    f"sentence {i} (gold line {g.line + j}, predicted line {p.line + j}): "
                    f"token {gt!r} in gold but {pt!r} predicted"
                )
    if len(gold) != len(pred):
        raise AlignmentError(
            f"sentence {min(len(gold), len(pred)) + 1}: {len(gold)} gold sentences but {len(pred)} predicted"
        )


def score_sentences(gold: list[Sentence], pred: list[Sentence]) -> dict[str, Any]:
    """Check alignment, then score predicted tags against gold tags."""
    check_aligned(gold, pred)
    return score([s.tags for s in gold], [s.tags for s in pred])
