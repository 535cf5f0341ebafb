"""Task-agnostic distillation: the student imitates a pretrained encoder on raw text (`distill:method=agnostic`).

As DistilBERT: the teacher's masked-LM distribution (KL), the student's own MLM loss and a
hidden-state cosine, on packed blocks of raw text; fine-tune the student afterwards. The
work is `_train._distill_agnostic`, imported when the route runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ndogo.compress.distill import DISTILL, DistillConfig
from ndogo.options import option


@DISTILL.register("agnostic")
@dataclass
class AgnosticDistillConfig(DistillConfig):
    """The student imitates a pretrained encoder's masked-LM on raw text; then `ndogo finetune` it."""

    DEFAULTS: ClassVar[dict[str, float]] = {"soft_weight": 5.0, "hard_weight": 2.0, "cos_weight": 1.0, "lr": 5e-4,
                                            "batch_size": 32}

    corpus: str | None = option(None, help="folder of raw text, one <lang>.txt per language.")
    seq_len: int = option(128, min=8, help="packed block length in sub-words.")
    alpha: float = option(0.3, min=0, help="language sampling p_i ∝ q_i^alpha (q_i: share of tokens).")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.corpus:
            raise ValueError("agnostic distillation needs --corpus (a folder of <lang>.txt raw text)")


def distill_agnostic(teacher: str, out: Path, config: AgnosticDistillConfig) -> None:
    """Train the student on raw text against the teacher's masked-LM."""
    from ndogo.compress.distill._train import _distill_agnostic

    _distill_agnostic(teacher, out, config)


DISTILL.handler(AgnosticDistillConfig)(distill_agnostic)
