"""`ndogo prune`, `ndogo densify` and `ndogo prune-sweep`: pruning a saved model and measuring what it costs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{what}: expected comma-separated numbers, got {text!r}") from None


PRUNE_INTRO = """Prune a saved model and save the smaller one; reports the achieved sparsity and size on disk.

Magnitude pruning zeroes the smallest weights of every encoder Linear layer and stores the model as kind `sparse` (bitmask + non-zero values), so it is smaller on disk roughly in proportion to its density; `ndogo densify` turns it back into a plain Hugging Face directory. heads / ffn physically remove attention heads or FFN neurons, so the model also runs faster (kind `structured`).

Methods (--method, default magnitude), each with its own options:

{methods}

Examples:

  ndogo prune runs/minilm-hau --sparsity 0.6 --out runs/prune/hau-s60

  ndogo prune runs/minilm-hau --sparsity 0.6 --out runs/prune/hau-s60-r1 --recover-epochs 1 --data ../shared/data/masakhaner --lang hau

  ndogo prune runs/minilm-hau --method heads --sparsity 0.5 --importance gradient --data ../shared/data/masakhaner --lang hau --out runs/prune/hau-h50
"""


def register(app: typer.Typer) -> None:
    """Add the pruning commands to the `ndogo` app."""
    from ndogo.commands._common import quiet_libraries, refuse_used_out, split_langs, user_errors
    from ndogo.commands._options import build_config, flag, method_options, methods_help, parameters, with_signature
    from ndogo.compress.prune import PRUNE

    methods = [PRUNE.get(n) for n in PRUNE.names()]
    flags = {f.name: flag(f) for m in methods for f in m.options() if f.name != "show_progress"}

    def _fixed(
        run: Annotated[Path, typer.Argument(help="A saved model directory (kind hf or sparse), usually a fine-tuned run.")],
        out: Annotated[Path, typer.Option(help="Where the pruned model is saved.")],
        method: Annotated[str, typer.Option(help="The pruning method (listed above, with its options).")] = "magnitude",
        as_json: Annotated[bool, typer.Option("--json", help="Print the saved ndogo.json record.")] = False,
    ) -> None:
        """The hand-written part of the signature; the method options are generated from their configs."""

    def body(run: Path, out: Path, method: str = "magnitude", as_json: bool = False, **options: object) -> None:
        quiet_libraries()
        try:
            chosen = PRUNE.get(method)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--method") from None
        if options.get("lang"):
            options["lang"] = ",".join(split_langs(str(options["lang"])))
        if as_json:
            options["show_progress"] = False
        cfg = build_config(chosen, options, flags)
        refuse_used_out(out)
        import json

        from ndogo.compress.recipe import run_stage
        from ndogo.models.loading import read_meta

        meta = read_meta(run_stage("prune", run, out, cfg))
        if as_json:
            typer.echo(json.dumps(meta, indent=2, ensure_ascii=False))
            return
        size = f"{meta['size_bytes'] / 2**20:.1f} MiB on disk"
        if "pruned_params" in meta:
            typer.echo(f"sparsity {meta['sparsity']:.4f} over {meta['pruned_params']:,} pruned weights "
                       f"(requested {cfg.sparsity}), {meta['model_sparsity']:.4f} of the whole model; {size}; "
                       f"saved in {out}")
        elif "layers" in meta:
            kept = ", ".join(f"{s['heads']}h/{s['ffn']}f" for s in meta["layers"])
            typer.echo(f"{meta['param_reduction']:.1%} fewer parameters ({meta['params']:,}); layers keep "
                       f"heads/FFN {kept}; {size}; saved in {out}")
        else:
            typer.echo(f"{method}: {size}; saved in {out}")
        if meta.get("recovery"):
            rec = meta["recovery"]
            typer.echo(f"recovery: {rec['epochs']} epoch(s), best dev {rec.get('metric', 'f1')} "
                       f"{rec.get('best_dev', rec.get('best_dev_f1')):.4f}")

    doc = PRUNE_INTRO.format(methods=methods_help(methods, PRUNE.base))
    generated = method_options(methods, skip=("show_progress",))
    app.command("prune")(user_errors(with_signature(body, "prune", doc, parameters(_fixed), generated)))

    @app.command("prune-sweep")
    @user_errors
    def prune_sweep(
        out: Annotated[Path, typer.Option(help="Folder for sweep.csv, the tables, the plots (and models with --keep-models).")],
        runs: Annotated[str, typer.Option(help="Fine-tuned model per language, with {lang} for the code.")] = "runs/minilm-{lang}",
        lang: Annotated[str, typer.Option(help="Languages, comma-separated: each one's model is pruned.")] = "hau,swa,yor",
        eval_lang: Annotated[str | None, typer.Option(help="Languages scored (the others zero-shot); default: --lang.")] = None,
        data: Annotated[str | None, typer.Option(help="Local MasakhaNER-layout folder or hub corpus; default $NDOGO_DATA or `masakhaner`.")] = None,
        sparsities: Annotated[str, typer.Option(help="Comma-separated sparsities (0 = the dense model itself).")] = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.95",
        recover_epochs: Annotated[str, typer.Option(help="Comma-separated recovery epochs per cell, 0 = one-shot (e.g. 0,1).")] = "0",
        transfer: Annotated[bool, typer.Option(help="Also evaluate each pruned model zero-shot on the other languages.")] = True,
        scope: Annotated[str, typer.Option(help="layer or global.")] = "layer",
        include_embeddings: Annotated[bool, typer.Option(help="Prune the embeddings too.")] = False,
        before: Annotated[str, typer.Option(help="Sparsities for pruning *before* fine-tuning (each a full fine-tuning run), e.g. 0.3,0.6,0.8,0.9; empty: none.")] = "",
        before_model: Annotated[str, typer.Option(help="Pretrained model for --before runs.")] = "minilm",
        before_epochs: Annotated[int, typer.Option(min=1, help="Epochs of each --before run (the dense baseline's budget).")] = 10,
        before_lr: Annotated[float, typer.Option(help="Learning rate of --before runs (the dense baseline's).")] = 1e-4,
        split: Annotated[str, typer.Option(help="Split scored.")] = "test",
        threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (1 on a shared machine).")] = None,
        keep_models: Annotated[bool, typer.Option(help="Keep every pruned model under OUT/artifacts (large).")] = False,
        executor: Annotated[str, typer.Option(help="local: one cell at a time; ray: as many at once as the cores allow at --threads each (e.g. two at --threads 1 on two cores).")] = "local",
    ) -> None:
        """F1 against sparsity for each language's model, with zero-shot transfer: CSV, markdown and one PNG per language.

        Each cell (language, sparsity, recovery epochs) prunes that language's model,
        scores it on its own test set and, with --transfer, on the others. The grid is
        run by `ndogo sweep` (OUT/prune-sweep.toml is its config, OUT/results.sqlite its
        store, so `ndogo report OUT` views it too); OUT/sweep.csv holds a row per model
        and evaluation language. Rerunning skips finished cells. One process per OUT:
        to run cells side by side, use --executor ray.

        Example: ndogo prune-sweep --out runs/prune-sweep --data ../shared/data/masakhaner --lang hau,swa,yor --recover-epochs 0,1 --threads 1
        """
        quiet_libraries()
        from ndogo.experiments.prune_sweep import SweepSpec, run_sweep
        from ndogo.report.sparsity_sweep import write_reports

        spec = SweepSpec(out=str(out), runs=runs, langs=split_langs(lang), data=data,
                         eval_langs=split_langs(eval_lang) if eval_lang else None,
                         sparsities=_floats(sparsities, "--sparsities"),
                         recover_epochs=[int(x) for x in _floats(recover_epochs, "--recover-epochs")],
                         transfer=transfer, scope=scope, include_embeddings=include_embeddings,
                         before=_floats(before, "--before"), before_model=before_model, before_epochs=before_epochs,
                         before_lr=before_lr, split=split, threads=threads, keep_models=keep_models,
                         executor=executor)
        result = run_sweep(spec)
        langs = list(dict.fromkeys(r["model_lang"] for r in result.rows))
        for p in [result.config, result.csv, *write_reports(result.rows, out, langs)]:
            typer.echo(f"wrote {p}")
        if result.failures:
            typer.echo(f"{len(result.failures)} cell(s) failed (rerun to retry them; logs in {out}/logs):", err=True)
            for line in result.failures:
                typer.echo(f"  {line}", err=True)
            raise typer.Exit(1)
