"""`ndogo distill`: a smaller student from a teacher, initialised from the teacher's own layers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    """Add `ndogo distill` to the `ndogo` app, its options generated from the routes' configs."""
    from ndogo.commands._common import quiet_libraries, user_errors
    from ndogo.commands._options import build_config, flag, method_options, methods_help, parameters, with_signature
    from ndogo.compress.distill import DISTILL, DistillConfig

    methods = [DISTILL.get(n) for n in DISTILL.names()]
    skip = ("show_progress",)
    flags = {f.name: flag(f) for m in methods for f in m.options() if f.name not in skip}

    def _distill_fixed(
        teacher: Annotated[str, typer.Option(help="Teacher: a pretrained encoder (agnostic) or a fine-tuned NER run (task); directory or `minilm`.")],
        out: Annotated[Path, typer.Option(help="Where the student is saved.")],
        method: Annotated[str, typer.Option("--method", "--mode", help="The route (listed above, with its own options): task or agnostic.")] = "task",
    ) -> None:
        """The hand-written part of the signature; every setting is generated from the routes' configs."""

    def distill(teacher: str, out: Path, method: str = "task", **options: Any) -> None:
        quiet_libraries()
        from ndogo.compress.recipe import run_stage
        from ndogo.models.loading import read_meta

        try:
            chosen = DISTILL.get(method)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--method") from None
        cfg = build_config(chosen, options, flags)
        meta = read_meta(run_stage("distill", teacher, out, cfg))
        shape = meta["student_shape"]
        typer.echo(f"{cfg.mode} student {shape['layers']}L/{shape['hidden']}H from {teacher}: {meta['student_params']:,} "
                   f"parameters ({meta['param_reduction']:.1%} fewer than the teacher's {meta['teacher_params']:,}), "
                   f"{meta['size_bytes'] / 2**20:.1f} MiB; saved in {out}")

    distill_doc = """Distil a teacher into a smaller student initialised from the teacher's own layers.

Routes (--method, also spelled --mode), each with its own options:

{methods}

task: the student imitates a fine-tuned NER teacher's label distribution (KL at
temperature T) and the gold labels, on the NER training data; dev F1 picks the epoch.
agnostic: the student imitates a pretrained encoder on raw text (KL on its masked-LM
distribution, own MLM loss, hidden-state cosine); fine-tune it afterwards.
The student's ndogo.json records the teacher, both parameter counts and sizes, the
shape, route, losses, data and seed. Rerunning the same command resumes.

Examples:
  ndogo distill --teacher runs/minilm-hau --mode task --student-layers 3 --data ../shared/data/masakhaner --lang hau --out runs/distill/hau-6to3
  ndogo distill --teacher runs/minilm-hau --mode task --student-layers 3 --data ../shared/data/masakhaner --lang hau --unlabeled ../shared/data/monolingual --unlabeled-limit 20000 --out runs/distill/hau-6to3-aug
  ndogo distill --teacher minilm --mode agnostic --student-layers 3 --corpus ../shared/data/monolingual --exclude-eval ../shared/data/masakhaner --max-steps 3000 --out runs/distill/minilm-l3
  ndogo finetune --model runs/distill/minilm-l3 --data ../shared/data/masakhaner --lang hau --out runs/distill/minilm-l3-hau
    """.replace("{methods}", methods_help(methods, DistillConfig))
    app.command("distill")(user_errors(with_signature(distill, "distill", distill_doc, parameters(_distill_fixed),
                                                      method_options(methods, skip=skip))))
