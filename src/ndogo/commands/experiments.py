"""`ndogo compress`, `ndogo sweep`, `ndogo report`, `ndogo recommend`: recipes and studies."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from ndogo.commands._common import quiet_libraries, split_langs, user_errors


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `ndogo` app (each module registers its own, so cli.py stays small)."""
    app.command()(compress)
    app.command()(sweep)
    app.command()(report)
    app.command()(recommend)


@user_errors
def compress(
    run: Annotated[str, typer.Argument(help="The model to start from: a saved run directory (or, for a recipe that begins with finetune, a pretrained model such as `minilm`).")],
    recipe: Annotated[str, typer.Option(help="A recipe file (.toml/.yaml/.json) or a one-line recipe: 'prune:sparsity=0.5 | quantize:method=onnx-int8'.")],
    out: Annotated[Path, typer.Option(help="Where the final model is saved (intermediate stages go to <out>.stages/).")],
    lang: Annotated[str | None, typer.Option(help="Language(s) for stages that train or count tokens (finetune, recovery, trim), comma-separated.")] = None,
    data: Annotated[str | None, typer.Option(help="Local MasakhaNER-layout folder or hub corpus; default $NDOGO_DATA or `masakhaner`.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for stages that have one (when the recipe does not set it).")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for stages that take them.")] = None,
    reuse: Annotated[list[str] | None, typer.Option(help="Existing fine-tuned runs a finetune stage may reuse when their settings match (repeatable; {lang} and {seed} are filled in).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print what each stage did as JSON.")] = False,
) -> None:
    """Apply a chain of stages (finetune, prune, distill, quantize, trim) to a model, in order.

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


@user_errors
def sweep(
    config: Annotated[Path, typer.Argument(help="A sweep config (.toml/.yaml): models, languages, recipes, seeds.")],
    out: Annotated[Path, typer.Option(help="Sweep directory: results.sqlite (one row per cell), artifacts/, logs/.")],
    data: Annotated[str | None, typer.Option(help="Local MasakhaNER-layout folder or hub corpus; wins over the config's `data`, then $NDOGO_DATA, then the hub.")] = None,
    executor: Annotated[str, typer.Option(help="local (one cell at a time here) or ray (cells as Ray tasks).")] = "local",
    resume: Annotated[bool, typer.Option(help="Continue a sweep in --out: finished cells are kept, the rest run.")] = False,
    ray_address: Annotated[str | None, typer.Option(help="A Ray cluster to join (e.g. auto or ray://head:10001); default: a local instance.")] = None,
    device: Annotated[str, typer.Option(help="Where cells train and evaluate: auto (CUDA when the cell has a GPU, else the CPU), cpu, cuda or cuda:N. A stage's own device option wins.")] = "auto",
    progress: Annotated[bool, typer.Option(help="Show the progress bar (a line per finished cell is always printed).")] = True,
    lang: Annotated[str | None, typer.Option(help="Only these of the config's languages (comma-separated, e.g. swa,yor), "
                                             "to split a sweep over sessions; a cell's id and row do not change.")] = None,
    recipe: Annotated[str | None, typer.Option(help="Only these of the config's recipes (comma-separated; the baseline "
                                               "comes along where they need it), e.g. to run one recipe beside a sweep "
                                               "in another --out.")] = None,
    seed: Annotated[str | None, typer.Option(help="Only these of the config's seeds (comma-separated, e.g. 42 or 1,2), "
                                             "to run one seed of every cell first; a cell's id and row do not change.")] = None,
) -> None:
    """Run every cell (model × language × recipe × seed) of a grid and store one row per cell.

    Killed at any moment (even kill -9), the same command with --resume finishes the
    sweep: done cells are not rerun, none is lost or duplicated. A failed cell is
    stored with its error and the others go on. The whole config is checked first.

    It prints where the logs are, then a line for each training epoch and each cell as it
    finishes, with the time left (plain lines when written to a file; on a terminal, above a
    progress bar). Each cell's full output is in <out>/logs/<cell id>.log.

    Example (the quickstart: about 15 minutes on a 2-core CPU with a core to itself; it runs on
    one thread, so on a busy machine longer in proportion, up to an hour):

      ndogo sweep configs/quickstart.toml --data ../shared/data/masakhaner --out runs/sweeps/quickstart

    then: ndogo report runs/sweeps/quickstart --out runs/sweeps/quickstart/report
    """
    quiet_libraries()
    from ndogo.experiments.config import load_sweep_config
    from ndogo.experiments.sweep import run_sweep

    only = None if lang is None else [x.strip() for x in lang.split(",") if x.strip()]
    seeds = None
    if seed is not None:  # a malformed option is named before the config is read
        try:
            seeds = [int(x) for x in seed.split(",") if x.strip()]
        except ValueError:
            raise typer.BadParameter(f"expected whole numbers separated by commas, got {seed!r}",
                                     param_hint="--seed") from None
    # on a Ray cluster a cell may ask for more than this machine (the head node) has
    cfg = load_sweep_config(config, data, only, this_machine=ray_address is None)
    if recipe is not None:
        cfg = cfg.only_recipes([x.strip() for x in recipe.split(",") if x.strip()])
    if seeds is not None:
        cfg = cfg.only_seeds(seeds)
    summary = run_sweep(cfg, out, executor=executor, resume=resume, ray_address=ray_address,
                        show_progress=progress, device=device)
    typer.echo(f"{summary.done} of {summary.total} cells done, {summary.failed} failed ({summary.seconds / 60:.1f} min); results in "
               f"{Path(summary.directory) / 'results.sqlite'}")
    for failure in summary.failures:
        typer.echo(f"  failed: {failure}")
    if summary.failed:
        if all("its baseline learned nothing" in f for f in summary.failures):
            typer.echo("these cells stay not run on --resume: their baseline found no entity; use a model "
                       "that reads the language, or set [evaluate] skip_empty_baselines = false")
        elif all("its baseline learned nothing" in f or "too weak to compress" in f for f in summary.failures):
            typer.echo("these cells stay not run on --resume: their baseline is under the config's "
                       "min_baseline_dev_f1; train it longer, or lower the floor")
        else:
            typer.echo(f"fix the cause and rerun with --resume to retry the failed cells: ndogo sweep {config} "
                       f"--out {out} --resume")
        raise typer.Exit(1)


@user_errors
def report(
    directory: Annotated[Path, typer.Argument(help="A sweep directory (holding results.sqlite), or a CSV of its rows "
                                                   "(e.g. the committed docs/bench/atlas-minilm.csv).")],
    out: Annotated[Path, typer.Option(help="Report folder: results.csv, results.md, PNG plots, index.html.")],
    also: Annotated[list[Path] | None, typer.Option(help="More rows to report with it (repeatable): a sweep directory or "
                                                         "CSV holding more seeds of the same cells, e.g. "
                                                         "docs/bench/atlas-seeds.csv.")] = None,
    facts: Annotated[list[Path] | None, typer.Option(help="Language facts to show instead of computing them "
                                                          "(repeatable): CSVs of bench/atlas_facts.py, which also "
                                                          "hold the share of test words trimming re-splits.")] = None,
) -> None:
    """Tables (F1 and Δ to the baseline per language and method, mean ± std over seeds), plots and one HTML page.

    index.html is self-contained (plots inlined) and records the config and the
    environment (package versions, CPU, threads).

    Example: ndogo report runs/sweeps/quickstart --out runs/sweeps/quickstart/report

    Example, the atlas (both corpora, both models, the seed spread, the language facts):
    ndogo report docs/bench/atlas-minilm.csv --also docs/bench/atlas-seeds.csv
    --also docs/bench/atlas-me5s.csv --also docs/bench/atlas-mnr2.csv
    --facts docs/bench/atlas-facts.csv --facts docs/bench/atlas-facts-mnr2.csv --out docs/atlas
    """
    from ndogo.report import write_report

    files = write_report(directory, out, also=also or (), facts=facts or ())
    for path in files:
        typer.echo(str(path))


@user_errors
def recommend(
    directory: Annotated[Path, typer.Argument(help="A sweep directory (holding results.sqlite), or a CSV of its rows "
                                                   "(e.g. the committed docs/bench/atlas-minilm.csv).")],
    lang: Annotated[str, typer.Option(help="The language to ship.")],
    max_f1_drop: Annotated[float, typer.Option(help="Largest F1 loss against the fine-tuned baseline you accept, in points (1 = 0.01 F1).")],
    optimize: Annotated[str, typer.Option(help="What to make smallest: size (on disk) or latency (batch 1).")] = "size",
    model: Annotated[str | None, typer.Option(help="Only this model of the sweep (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    split: Annotated[str, typer.Option(help="Which split's F1 the budget is read on: dev (the default; test is only reported) or test (for rows measured before dev F1 was recorded; the output says so).")] = "dev",
    ship: Annotated[Path | None, typer.Option(help="Also write the chosen model as a bundle with its model card here (see `ndogo ship`).")] = None,
    data: Annotated[Path | None, typer.Option(help="For a language the sweep has no rows for: the corpus root holding it (default: the sweep's own data), to predict its costs from the other languages' rows.")] = None,
    rows_data: Annotated[Path | None, typer.Option(help="The corpus root the rows were measured on, where they do not record it (CSVs written before the `data` column); the known languages' facts are read there.")] = None,
    also: Annotated[list[Path] | None, typer.Option(help="More rows to choose or predict from (repeatable): a sweep directory or CSV, e.g. docs/bench/atlas-seeds.csv or the MasakhaNER 2.0 atlas; a language measured on a second corpus is named lang@corpus (wol@masakhaner2).")] = None,
) -> None:
    """The best recipe in a sweep for a language within an F1 budget, and how to reproduce it.

    For a language with no rows in the sweep, it predicts instead what each method would cost
    there, from the languages that have rows and cheap facts about the new one (training size,
    entity density, how the model's tokenizer reads it, script), with the prediction's
    leave-one-language-out error (ndogo.report.predict_cost).

    F1 is the mean over the sweep's seeds. The budget is read on dev F1 (--split dev, the default):
    test F1 is shown beside it and never used to choose. Example:

      ndogo recommend runs/sweeps/quickstart --lang hau --max-f1-drop 1 --optimize latency

    A language the atlas never ran, predicted from its committed rows (both corpora's languages):

      ndogo recommend docs/bench/atlas-minilm.csv --also docs/bench/atlas-mnr2.csv --lang xho \\
          --max-f1-drop 1 --data ../shared/data/masakhaner2

    With --ship DIR the chosen model is also written as a bundle with its model card (`ndogo ship`), its numbers
    taken from the sweep's row (test and dev F1 per type, size, latency and machine, the baseline's cost).
    """
    from ndogo.report.recommend import format_recommendation
    from ndogo.report.recommend import recommend as pick

    try:
        choice = pick(directory, lang, max_f1_drop, optimize, model, split, also or ())
    except ValueError as err:
        if "no finished cells for language" not in str(err):
            raise
        typer.echo(predicted_costs(directory, lang, max_f1_drop, model, data, as_json, rows_data, also or ()))
        return
    if ship is not None:
        quiet_libraries()
        from ndogo.report.recommend import ship_recommendation

        choice["bundle"] = str(ship_recommendation(directory, choice, ship))
    if as_json:
        typer.echo(json.dumps(choice, indent=2))
    else:
        typer.echo(format_recommendation(choice))
        if ship is not None:
            typer.echo(f"  shipped  {choice['bundle']} (model card: {choice['bundle']}/README.md)")


def predicted_costs(directory: Path, lang: str, budget: float, model: str | None, data: Path | None,
                    as_json: bool, rows_data: Path | None = None, also: Sequence[Path] = ()) -> str:
    """The cost model's answer for a language the sweep never ran (see ndogo.report.predict_cost).

    Each known language's facts are read from the corpus its own rows were measured on
    (or `rows_data`), the new language's from `data`: the atlas of MasakhaNER 1.0 can
    then predict a MasakhaNER 2.0 language without mixing the two corpora's versions of hau.
    """
    quiet_libraries()
    from dataclasses import asdict

    from ndogo.data.corpus import lang_dir
    from ndogo.experiments.store import base_lang, load_sources
    from ndogo.models.loading import load_tokenizer
    from ndogo.report.predict_cost import find_corpus, format_predictions, language_facts, predict_costs

    rows = [r for r in load_sources([directory, *also]) if model is None or r.get("model") == model]
    if not rows:
        raise ValueError(f"{directory}: no finished cells at all; nothing to predict {lang!r} from")

    new_root = Path(data) if data else None

    def measured_on(lg: str) -> Path:
        root = find_corpus(rows, lg, near=new_root, fallback=rows_data)
        if root is None:
            recorded = next((r.get("data") for r in rows if r["lang"] == lg and r.get("data")), None)
            raise ValueError(f"{directory}: the rows of {lg!r} do not name a local corpus that holds it"
                             f"{f' ({recorded})' if recorded else ''}; give the one they were measured on "
                             "with --rows-data")
        return root

    root = new_root or measured_on(rows[0]["lang"])
    if not root.is_dir():
        raise ValueError(f"{lang}: no rows in {directory}, and no local corpus to read its facts from (--data)")
    lang_dir(root, lang)  # a language the corpus lacks is named here
    # Rows of several models (the atlas: minilm and me5s) are predicted model by model: a method's
    # cost and the tokenizer facts that predict it belong to one model.
    by_source: dict[str, list[dict]] = {}
    for r in rows:
        by_source.setdefault(r.get("model_source") or r["model"], []).append(r)
    answers = []
    for source, model_rows in by_source.items():
        name = model_rows[0]["model"]
        langs = sorted({r["lang"] for r in model_rows})
        t0 = time.perf_counter()
        typer.echo(f"{lang}: reading {len(langs) + 1} languages' facts under {name}'s tokenizer (cached after the "
                   "first time)…", err=True)
        tokenizer = load_tokenizer(source)
        facts = {lg: language_facts(measured_on(lg), base_lang(lg), tokenizer) for lg in langs}
        new = language_facts(root, lang, tokenizer)
        typer.echo(f"{lang}: {name}'s facts read in {time.perf_counter() - t0:.0f} s", err=True)
        answers.append((name, new, predict_costs(model_rows, facts, new, name)))
    if as_json:
        import json

        def one(name: str, new: dict, predictions: list) -> dict:
            return {"model": name, "facts": new, "predictions": [
                {**asdict(p), "beyond_measured": p.beyond_measured, "beyond_by": p.beyond_by} for p in predictions]}

        out: dict = {"lang": lang, "models": [one(*answer) for answer in answers]}
        if len(answers) == 1:
            out.update({k: v for k, v in out["models"][0].items() if k != "model"})  # the one-model shape, as before
        return json.dumps(out, indent=2)
    return "\n\n".join(format_predictions(lang, predictions, budget, name if len(answers) > 1 else None)
                       for name, _, predictions in answers)
