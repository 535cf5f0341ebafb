"""Task distillation: the student imitates a fine-tuned NER teacher on the NER data (`distill:method=task`).

The student learns the teacher's label distribution (KL at temperature T) and the gold
labels, optionally each layer's hidden states and attention (TinyBERT), on the NER training
data and on raw in-language text the teacher labels; dev F1 picks the epoch. The work is
`_train._distill_task`, imported when the route runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ndogo.compress.distill import DISTILL, DistillConfig
from ndogo.options import option


@DISTILL.register("task")
@dataclass
class TaskDistillConfig(DistillConfig):
    """The student imitates a fine-tuned NER teacher's labels on the NER data; dev F1 picks the epoch."""

    DEFAULTS: ClassVar[dict[str, float]] = {"soft_weight": 0.5, "hard_weight": 0.5, "cos_weight": 0.0, "lr": 1e-4,
                                            "batch_size": 16}

    epochs: int = option(10, min=1, help="epochs (best dev F1 kept).")
    # the converged-teacher rule applies to students too: a student stopped early against a teacher
    # trained to convergence (or the reverse) compares budgets, not models
    patience: int | None = option(None, min=1, help="stop after this many epochs without dev F1 gain (the best "
                                  "epoch, chosen on dev, is kept).")
    schedule: str = option("linear", choices=("linear", "plateau", "wsd"), help="the learning-rate schedule, as "
                           "`ndogo finetune --schedule` (plateau: hold, then halve from the best epoch's weights "
                           "after each epoch without dev gain; wsd: hold until dev stops improving, then one epoch "
                           "decaying to zero from the best epoch's weights).")
    # raw in-language text the teacher labels for the student (files, or folders of <lang>.txt);
    # lines holding a dev/test sentence of `data` (and of `exclude_eval`) are dropped first
    unlabeled: list[str] = option([], help="raw in-language text the teacher labels as extra training sentences (a "
                                  "text file, or a folder of <lang>.txt; repeatable). Lines holding a dev or test "
                                  "sentence of --data (and of --exclude-eval) are dropped first; labels are cached in "
                                  "OUT/teacher-labels.jsonl.")
    unlabeled_limit: int | None = option(None, min=1, help="at most this many teacher-labelled sentences (in file "
                                         "order, shared among the languages).")
    # layer-wise losses between each student layer and its mapped teacher layer (0: off)
    hidden_weight: float = option(0.0, min=0, help="weight of the MSE between each student layer's hidden states "
                                  "and its mapped teacher layer's (TinyBERT; 0 = off).")
    attention_weight: float = option(0.0, min=0, help="weight of the KL between mapped layers' head-averaged "
                                     "attention distributions (0 = off; runs attention eagerly).")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.langs:
            raise ValueError("task distillation needs --lang (the NER languages the teacher was fine-tuned on)")


def distill_task(teacher: str, out: Path, config: TaskDistillConfig) -> None:
    """Train the student on the NER data against the teacher's label distribution."""
    from ndogo.compress.distill._train import _distill_task

    _distill_task(teacher, out, config)


DISTILL.handler(TaskDistillConfig)(distill_task)
