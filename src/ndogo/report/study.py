"""The study's numbers (AfriBERTa compressed on MasakhaNER), set beside ours in the report.

The study reports averages over its languages, and some findings only as ranges or
sentences, so each entry keeps what it gives and nothing more: a method the study
measured gets its ΔF1, size and time reduction where it states them, and a
finding where it states that instead. Our side is computed from the rows, the
same way (mean over the languages the sweep ran), so the two can be read together.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from ndogo.report.summary import BASELINE, Summary


@dataclass(frozen=True)
class StudyClaim:
    """What the study says of one method; None where it gives no number."""

    method: str
    f1_change: float | None = None  # points, mean over languages
    size_reduction: float | None = None  # percent
    time_reduction: float | None = None  # percent, CPU latency
    finding: str = ""


# LLM.int8() and dynamic int8: the study's averages. Distillation and pruning: its ranges.
LLM_INT8 = StudyClaim("llm-int8", -4.7, 64.08, 52.3, "cuts size 64% and CPU latency 52% at about 4.7 F1")
DYNAMIC_INT8 = StudyClaim("dynamic-int8", None, 42.44, 40.9, "less size saved than LLM.int8(), more F1 lost")
DISTILL = StudyClaim("distillation", None, None, None, "students 22–31% smaller lose 1.3–1.9 F1")
PRUNE = StudyClaim("magnitude pruning", None, None, None,
                   "holds to 50–60% sparsity; after fine-tuning some languages collapse past ~70%")


def claim_for(recipe_spec: str) -> StudyClaim | None:
    """The study's claim for a one-stage recipe it also ran, else None (chains are ours alone)."""
    spec = recipe_spec.strip()
    if "|" in spec or not spec:
        return None
    if spec == "quantize:method=llm-int8":
        return LLM_INT8
    if spec == "quantize:method=dynamic-int8":
        return DYNAMIC_INT8
    if spec.startswith("distill:") and "mode=agnostic" not in spec:
        return DISTILL
    if re.fullmatch(r"prune:sparsity=[0-9.]+", spec):
        return PRUNE
    return None


def beside_the_study(summaries: list[Summary], model: str) -> list[list[str]]:
    """Rows: method, our mean ΔF1 [range], size and time reduction, and the study's numbers or finding."""
    def pct(x: float | None) -> str:
        return "–" if x is None else f"{x:.1f}"

    rows = []
    for recipe in dict.fromkeys(s.recipe for s in summaries if s.model == model and s.recipe != BASELINE):
        group = [s for s in summaries if s.model == model and s.recipe == recipe and s.delta is not None]
        claim = claim_for(group[0].recipe_spec) if group else None
        if claim is None:
            continue
        deltas = [s.delta for s in group if s.delta is not None]
        sizes = [100 * (1 - 1 / s.size_x) for s in group if s.size_x]
        times = [100 * (1 - 1 / s.speedup_b1) for s in group if s.speedup_b1]
        ours = f"{statistics.fmean(deltas):+.2f} [{min(deltas):+.2f} … {max(deltas):+.2f}]"
        rows.append([recipe, str(len(group)), ours, pct(statistics.fmean(sizes) if sizes else None),
                     pct(statistics.fmean(times) if times else None),
                     "–" if claim.f1_change is None else f"{claim.f1_change:+.2f}", pct(claim.size_reduction),
                     pct(claim.time_reduction), claim.finding])
    return rows
