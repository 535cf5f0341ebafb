"""`ndogo compress`: a recipe (a chain of stages) applied to a model, each stage's options checked first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ndogo.commands._common import quiet_libraries, split_langs, user_errors


@user_errors
def compress(
    run: Annotated[str, typer.Argument(help="The model to start from: a saved run directory (or, for a recipe that begins with finetune, a pretrained model such as `minilm`).")],
    recipe: Annotated[str, typer.Option(help="A recipe file (.toml/.yaml/.json) or a one-line recipe: 'prune:sparsity=0.5 | quantize:method=onnx-int8'.")],
    out: Annotated[Path, typer.Option(help="Where the final model is saved (intermediate stages go to <out>.stages/).")],
    lang: Annotated[str | None, typer.Option(help="Language(s) for stages that train or count tokens (finetune, recovery, trim), comma-separated.")] = None,
    data: Annotated[str | None, typer.Option(help="Local corpus folder (<data>/<lang>/<split>.txt or .tsv: any task's) or hub corpus; default $NDOGO_DATA or `masakhaner`.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for stages that have one (when the recipe does not set it).")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for stages that take them.")] = None,
    reuse: Annotated[list[str] | None, typer.Option(help="Existing fine-tuned runs a finetune stage may reuse when their settings match (repeatable; {lang} and {seed} are filled in).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print what each stage did as JSON.")] = False,
) -> None:
    """Apply a chain of stages (finetune, prune, distill, quantize, trim, export) to a model, in order.

    Every stage's options are checked before the first one runs. Run the same
    command again after an interruption and finished stages are skipped.

    Stages and their options: finetune (those of `ndogo finetune`, plus prune_sparsity,
    prune_schedule and prune_scope to prune before fine-tuning), prune (`ndogo prune`),
    distill, quantize (`ndogo quantize`), trim (`ndogo trim-vocab`); an unknown option is
    answered with the list of the stage's options. --lang, --data and --seed fill the
    options of that name in every stage that has one.

    Examples:

      ndogo compress runs/minilm-hau --recipe "prune:sparsity=0.5 | quantize:method=onnx-int8" --out runs/hau-p50-int8 --lang hau --data ../shared/data/masakhaner

      ndogo compress minilm --recipe "finetune:epochs=3 | prune:sparsity=0.5" --lang hau --out runs/hau-ft-p50
    """
    quiet_libraries()
    from ndogo.compress.recipe import compress as run_compress
    from ndogo.compress.recipe import parse_recipe
    from ndogo.data.corpus import resolve_data

    langs = split_langs(lang) if lang else None
    context = {"lang": langs[0] if langs and len(langs) == 1 else None, "langs": langs, "data": resolve_data(data),
               "seed": seed, "threads": threads}
    parsed = parse_recipe(recipe)
    result = run_compress(run, parsed, out, context, reuse or ())
    stages = [vars(s) for s in result.stages]
    if as_json:
        typer.echo(json.dumps({"out": str(result.path), "stages": stages}, indent=2))
        return
    for i, (record, call) in enumerate(zip(result.stages, parsed.stages, strict=True), 1):
        how = {"done": "already done", "existing": f"reused {record.path}"}.get(record.reused,
                                                                                f"{record.seconds:.0f}s")
        typer.echo(f"{i}. {call.one_line()}: {how}")
    typer.echo(f"model saved in {result.path}; measure it with: {evaluate_command(result.path, langs, data)}")


def evaluate_command(path: Path, langs: list[str] | None, data: str | None) -> str:
    """The `ndogo evaluate` line for a model just built, with the language and data it was built with."""
    import shlex

    from ndogo.models.loading import read_meta

    langs = langs or read_meta(path).get("langs") or []
    parts = ["ndogo", "evaluate", str(path), "--lang", langs[0] if langs else "LANG"]
    if data:
        parts += ["--data", data]
    return shlex.join(parts)


def register(app: typer.Typer) -> None:
    """Add `ndogo compress` to the `ndogo` app."""
    app.command("compress")(compress)
