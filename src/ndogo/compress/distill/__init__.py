"""Distillation: a smaller student from a teacher, task-specific (NER) or task-agnostic (masked LM).

The two routes are methods, as quantization's and pruning's are (`compress/methods.py`): one
module each, `task.py` and `agnostic.py`, holding the route's config (a subclass of
`DistillConfig`, which holds what both share) and its handler. A recipe picks one with
`distill:method=task` or, as every recipe written before the routes were methods does,
`distill:mode=task`; `DistillConfig(mode="task", ...)` builds the task route's config.

This module holds the settings and imports no torch, so the command line can build
`ndogo distill`'s options from them without loading a model library; the work (student
initialisation, losses, training loops) lives in `_train.py`, whose names are read from
here on first use: `from ndogo.compress.distill import distill, make_student` works as before.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from ndogo.compress.methods import MethodConfig, MethodRegistry
from ndogo.options import option


class _ByMode(type):
    """`DistillConfig(mode="task", ...)` builds that route's config: the one-class form from before the
    routes were methods, which scripts and tests still call."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is DistillConfig:
            return DISTILL.config(kwargs.pop("mode", None), *args, **kwargs)
        return super().__call__(*args, **kwargs)


@dataclass
class DistillConfig(MethodConfig, metaclass=_ByMode):
    """What both routes take: the student's shape, the losses they share and the optimisation."""

    #: the route's defaults for the settings left at None (agnostic as DistilBERT; task as the landed students)
    DEFAULTS: ClassVar[dict[str, float]] = {}

    student_layers: int | None = option(None, min=1, help="Student depth K; starts from every other teacher layer "
                                        "(i·N/K: 6→3 keeps 0,2,4).")
    layer_map: list[int] | None = option(None, sep=",", help="Exactly these teacher layers, e.g. 0,2,4 (instead "
                                         "of --student-layers).")
    student_hidden: int | None = option(None, min=1, help="Narrower student: keep this many hidden channels (a "
                                        "multiple of the head size), chosen by activation.")
    exclude_eval: list[str] = option([], help="A NER corpus folder (repeatable) whose dev and test sentences are "
                                     "dropped from --corpus (agnostic) and from --unlabeled (task).")
    max_steps: int | None = option(None, min=1, help="agnostic: optimizer steps (default 2000); task: overrides "
                                   "--epochs.")
    data: str | None = option(None, help="task: corpus folder (<data>/<lang>/<split>.txt or .tsv: the "
                              "teacher's task's) or hub corpus; default $NDOGO_DATA or `masakhaner`.")
    langs: list[str] = option([], flag="--lang", sep=",", item="language code, e.g. hau or hau,yor",
                              help="task: the teacher's language(s).")
    # losses: None means the route's default (agnostic 5 / 2 / 1 as DistilBERT; task 0.5 / 0.5 / 0)
    temperature: float = option(2.0, help="Softmax temperature of the soft targets.")
    soft_weight: float | None = option(None, min=0, help="Weight of the soft-target KL (default agnostic 5, task "
                                       "0.5).")
    hard_weight: float | None = option(None, min=0, help="Weight of the MLM / gold-label loss (default agnostic 2, "
                                       "task 0.5).")
    cos_weight: float | None = option(None, min=0, help="Weight of the hidden-state cosine loss (default agnostic "
                                      "1, task 0).")
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

    @property
    def mode(self) -> str:
        """The route (`task` or `agnostic`): the method's registered name, under its older name."""
        return self.method

    def identity(self) -> dict[str, Any]:
        """What decides the student (the stage's reuse key), keyed as when one config held both routes.

        Then every field of both routes was in the key, with `mode`: a route's key still holds the
        other route's fields at their defaults, so a student distilled then keeps its key and is
        reused. Fields at the values used before they existed (no patience, the linear schedule)
        are left out for the same reason.
        """
        values = dataclasses.asdict(self)
        for name in DISTILL.names():
            for f in dataclasses.fields(DISTILL.config_class(name)):
                if f.init and f.name not in values:
                    values[f.name] = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        values["mode"] = self.method
        if values.get("patience") is None:
            values.pop("patience", None)
        if values.get("schedule") == "linear":
            values.pop("schedule", None)  # added later: students keyed before it keep their keys
        return values

    def __post_init__(self) -> None:
        super().__post_init__()  # the bounds and choices of the option(...) declarations
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        for name, value in self.DEFAULTS.items():
            if getattr(self, name) is None:
                setattr(self, name, value)


DISTILL = MethodRegistry("distill", __name__, DistillConfig, default="task", selectors=("method", "mode"))
DistillConfig.registry = DISTILL


def distill_config(mode: str | None = None, /, **options: Any) -> DistillConfig:
    """The config of route `mode` (default task); an option the route does not take is a ValueError."""
    return DISTILL.config(mode, **options)


def __getattr__(name: str) -> Any:
    """The training side's names (distill, make_student, the losses...), imported on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    if name == "MODES":  # the routes' names: computed when asked for, with every route's module imported
        return tuple(DISTILL.names())
    import importlib

    _train = importlib.import_module("ndogo.compress.distill._train")
    try:
        return getattr(_train, name)
    except AttributeError:
        raise AttributeError(f"module 'ndogo.compress.distill' has no attribute {name!r}") from None
