"""Accuracy and macro-F1 over labels: one label per text (topic, sentiment) or per word (POS).

scikit-learn computes them (it is already installed with seqeval), so the numbers
are the ones MasakhaPOS, SIB-200 and AfriSenti report by construction. Macro-F1
averages over the labels present in gold *or* predictions, so a model that never
predicts a rare class pays for it, and each label's own F1 is kept for the report.
"""

from __future__ import annotations

from typing import Any

from ndogo.metrics.entity import AlignmentError


def label_scores(gold: list[str], pred: list[str]) -> dict[str, Any]:
    """accuracy, macro_f1 and per-label precision/recall/F1/support of flat label lists."""
    if len(gold) != len(pred):
        raise AlignmentError(f"{len(gold)} gold labels but {len(pred)} predicted")
    if not gold:
        return {"accuracy": 0.0, "macro_f1": 0.0, "per_type": {}}
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    names = sorted(set(gold) | set(pred))
    precision, recall, f1, support = precision_recall_fscore_support(gold, pred, labels=names, zero_division=0)
    per_type = {name: {"f1": float(f), "precision": float(p), "recall": float(r), "support": int(n)}
                for name, p, r, f, n in zip(names, precision, recall, f1, support, strict=True)}
    return {"accuracy": float(accuracy_score(gold, pred)), "macro_f1": float(sum(f1) / len(names)),
            "per_type": per_type}


def tag_scores(gold: list[list[str]], pred: list[list[str]]) -> dict[str, Any]:
    """Word-level accuracy and macro-F1 over tags of aligned sentences (POS)."""
    if len(gold) != len(pred):
        raise AlignmentError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    for i, (g, p) in enumerate(zip(gold, pred, strict=True), start=1):
        if len(g) != len(p):
            raise AlignmentError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
    return label_scores([t for s in gold for t in s], [t for s in pred for t in s])
