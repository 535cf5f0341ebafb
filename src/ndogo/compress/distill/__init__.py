"""Distillation: a smaller student from a teacher, task-specific (NER) or task-agnostic (masked LM).

This module holds the run's settings, `DistillConfig`, and imports no torch, so the
command line can build `ndogo distill`'s options from it without loading a model
library; the work (student initialisation, losses, training loops) lives in
`_train.py`, whose names are read from here on first use: `from
ndogo.compress.distill import distill, make_student` works as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ndogo.options import check_fields, option

MODES = ("agnostic", "task")


@dataclass
class DistillConfig:
    """Student shape, route, data, losses and optimisation of a distillation run."""

    mode: str = option("task", choices=MODES, help="agnostic: distil the masked-LM on raw text (then `ndogo "
                       "finetune` it); task: distil the NER model on NER data.")
    student_layers: int | None = option(None, min=1, help="Student depth K; starts from every other teacher layer "
                                        "(i·N/K: 6→3 keeps 0,2,4).")
    layer_map: list[int] | None = option(None, sep=",", help="Exactly these teacher layers, e.g. 0,2,4 (instead "
                                         "of --student-layers).")
    student_hidden: int | None = option(None, min=1, help="Narrower student: keep this many hidden channels (a "
                                        "multiple of the head size), chosen by activation.")
    # agnostic: raw text, one <lang>.txt per language
    corpus: str | None = option(None, help="agnostic: folder of raw text, one <lang>.txt per language.")
    exclude_eval: list[str] = option([], help="A NER corpus folder (repeatable) whose dev and test sentences are "
                                     "dropped from --corpus (agnostic) and from --unlabeled (task).")
    seq_len: int = option(128, min=8, help="agnostic: packed block length in sub-words.")
    alpha: float = option(0.3, min=0, help="agnostic: language sampling p_i ∝ q_i^alpha (q_i: share of tokens).")
    max_steps: int | None = option(None, min=1, help="agnostic: optimizer steps (default 2000); task: overrides "
                                   "--epochs.")
    # task: NER data
    data: str | None = option(None, help="task: MasakhaNER-layout folder or hub corpus; default $NDOGO_DATA or "
                              "`masakhaner`.")
    langs: list[str] = option([], flag="--lang", sep=",", item="language code, e.g. hau or hau,yor",
                              help="task: the teacher's language(s).")
    epochs: int = option(10, min=1, help="task: epochs (best dev F1 kept).")
    # the converged-teacher rule applies to students too: a student stopped early against a teacher
    # trained to convergence (or the reverse) compares budgets, not models
    patience: int | None = option(None, min=1, help="task: stop after this many epochs without dev F1 gain (the "
                                  "best epoch, chosen on dev, is kept).")
    schedule: str = option("linear", choices=("linear", "plateau"), help="task: the learning-rate schedule, as "
                           "`ndogo finetune --schedule` (plateau: hold, then halve from the best epoch's weights "
                           "after each epoch without dev gain).")
    # task: raw in-language text the teacher labels for the student (files, or folders of <lang>.txt);
    # lines holding a dev/test sentence of `data` (and of `exclude_eval`) are dropped first
    unlabeled: list[str] = option([], help="task: raw in-language text the teacher labels as extra training "
                                  "sentences (a text file, or a folder of <lang>.txt; repeatable). Lines holding a "
                                  "dev or test sentence of --data (and of --exclude-eval) are dropped first; labels "
                                  "are cached in OUT/teacher-labels.jsonl.")
    unlabeled_limit: int | None = option(None, min=1, help="task: at most this many teacher-labelled sentences (in "
                                         "file order, shared among the languages).")
    # losses: None means the route's default (agnostic 5 / 2 / 1 as DistilBERT; task 0.5 / 0.5 / 0)
    temperature: float = option(2.0, help="Softmax temperature of the soft targets.")
    soft_weight: float | None = option(None, min=0, help="Weight of the soft-target KL (default agnostic 5, task "
                                       "0.5).")
    hard_weight: float | None = option(None, min=0, help="Weight of the MLM / gold-label loss (default agnostic 2, "
                                       "task 0.5).")
    cos_weight: float | None = option(None, min=0, help="Weight of the hidden-state cosine loss (default agnostic "
                                      "1, task 0).")
    # task: layer-wise losses between each student layer and its mapped teacher layer (0: off)
    hidden_weight: float = option(0.0, min=0, help="task: weight of the MSE between each student layer's hidden "
                                  "states and its mapped teacher layer's (TinyBERT; 0 = off).")
    attention_weight: float = option(0.0, min=0, help="task: weight of the KL between mapped layers' head-averaged "
                                     "attention distributions (0 = off; runs attention eagerly).")
    # optimisation
    lr: float | None = option(None, help="Peak learning rate (default agnostic 5e-4, task 1e-4).")
    batch_size: int | None = option(None, min=1, help="Blocks (agnostic, default 32) or windows (task, default "
                                    "16) per step.")
    grad_accum: int = option(1, min=1, help="Split each step's batch into this many micro-batches (less memory).")
    seed: int = option(42, min=0, help="Seed of the student's data order and of every random choice.")
    save_every: int = option(200, min=1, help="Checkpoint every this many steps.")
    precision: str = option("auto", choices=("auto", "bf16", "fp32", "fp16"), help="auto (agnostic: bf16 where "
                            "the device has native bf16; task: fp32, as the landed students), bf16, fp32, or fp16 "
                            "(CUDA only, with loss scaling).")
    threads: int | None = option(None, min=1, help="CPU threads (default: all cores).")
    # where the teacher and the student run; how, not what: left out of the stage's reuse key
    device: str = option("auto", help="auto (CUDA when present, else the CPU; $NDOGO_DEVICE overrides), cpu, "
                         "cuda or cuda:N: the teacher and the student both.")
    show_progress: bool = True

    def identity(self) -> dict[str, Any]:
        """What decides the student (the stage's reuse key); fields at the values used before they existed
        (no patience, the linear schedule) are left out, so older students keep their keys."""
        from dataclasses import asdict

        values = asdict(self)
        if values.get("patience") is None:
            values.pop("patience", None)
        if values.get("schedule") == "linear":
            values.pop("schedule", None)  # added later: students keyed before it keep their keys
        return values

    def __post_init__(self) -> None:
        check_fields(self)  # the bounds and choices of the option(...) declarations
        if self.mode not in MODES:
            raise ValueError(f"mode must be agnostic or task, got {self.mode!r}")
        if self.mode == "agnostic" and not self.corpus:
            raise ValueError("agnostic distillation needs --corpus (a folder of <lang>.txt raw text)")
        if self.mode == "task" and not self.langs:
            raise ValueError("task distillation needs --lang (the NER languages the teacher was fine-tuned on)")
        if self.unlabeled and self.mode != "task":
            raise ValueError("--unlabeled is for task distillation (the teacher labels it); agnostic uses --corpus")
        if self.unlabeled_limit is not None and self.unlabeled_limit < 1:
            raise ValueError(f"unlabeled_limit must be at least 1, got {self.unlabeled_limit}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if self.precision not in ("auto", "bf16", "fp32", "fp16"):  # checked here, not after the corpus is packed
            raise ValueError(f"precision must be auto, bf16, fp32 or fp16, got {self.precision!r}")
        agnostic = self.mode == "agnostic"
        defaults = {"soft_weight": 5.0 if agnostic else 0.5, "hard_weight": 2.0 if agnostic else 0.5,
                    "cos_weight": 1.0 if agnostic else 0.0, "lr": 5e-4 if agnostic else 1e-4,
                    "batch_size": 32 if agnostic else 16}
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if min(self.soft_weight, self.hard_weight, self.cos_weight, self.hidden_weight, self.attention_weight) < 0:
            raise ValueError("loss weights must be non-negative")
        if (self.hidden_weight or self.attention_weight) and self.mode != "task":
            raise ValueError("hidden_weight and attention_weight are losses of task distillation")


def __getattr__(name: str) -> Any:
    """The training side's names (distill, make_student, the losses...), imported on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    import importlib

    _train = importlib.import_module("ndogo.compress.distill._train")
    try:
        return getattr(_train, name)
    except AttributeError:
        raise AttributeError(f"module 'ndogo.compress.distill' has no attribute {name!r}") from None
