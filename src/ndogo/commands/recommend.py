"""`ndogo recommend`: the best recipe within a budget of the task's metric, or predicted costs for a new language."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from ndogo.commands._common import quiet_libraries, split_langs, user_errors


@user_errors
def recommend(
    directory: Annotated[Path, typer.Argument(help="A sweep directory (holding results.sqlite), or a CSV of its rows "
                                                   "(e.g. the committed docs/bench/atlas-minilm.csv).")],
    lang: Annotated[str | None, typer.Option(help="The language to ship, or several comma-separated (hau,swa,yor) to choose ONE recipe for all of them (required, but with --check-cost-model).", show_default=False)] = None,
    max_f1_drop: Annotated[float | None, typer.Option(help="Largest loss against the fine-tuned baseline you accept, in points of the task's headline metric: entity F1 for NER, accuracy for POS and topic, macro-F1 for sentiment (1 = one percentage point of it; with several languages, their mean loss; required, but with --check-cost-model).", show_default=False)] = None,
    max_worst_drop: Annotated[float | None, typer.Option(help="The largest loss any one language may have, in the same points: with several languages --max-f1-drop bounds their mean, this each of them. Default: no limit.", show_default=False)] = None,
    min_smaller: Annotated[float | None, typer.Option(help="Only recipes at least this many times smaller on disk than the same model's baseline (in every language asked for); one not measured is left out.", show_default=False)] = None,
    min_faster: Annotated[float | None, typer.Option(help="Only recipes at least this many times faster than the same model's baseline at batch 1 (in every language asked for); one not measured is left out.", show_default=False)] = None,
    optimize: Annotated[str, typer.Option(help="What to make smallest: size (on disk) or latency (batch 1); with several languages, its mean over them.")] = "size",
    model: Annotated[str | None, typer.Option(help="Only this model of the sweep (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    split: Annotated[str, typer.Option(help="Which split's score (the task's headline metric) the budget is read on: dev (the default; test is only reported) or test (for rows measured before dev scores were recorded; the output says so).")] = "dev",
    ship: Annotated[Path | None, typer.Option(help="Also write the chosen model as a bundle with its model card here (see `ndogo ship`).")] = None,
    data: Annotated[Path | None, typer.Option(help="For a language the sweep has no rows for: the corpus root holding it (default: the sweep's own data), to predict its costs from the other languages' rows.")] = None,
    rows_data: Annotated[Path | None, typer.Option(help="The corpus root the rows were measured on, where they do not record it (CSVs written before the `data` column); the known languages' facts are read there.")] = None,
    also: Annotated[list[Path] | None, typer.Option(help="More rows to choose or predict from (repeatable): a sweep directory or CSV, e.g. docs/bench/atlas-seeds.csv or the MasakhaNER 2.0 atlas; a language measured on a second corpus is named lang@corpus (wol@masakhaner2).")] = None,
    check_cost_model: Annotated[bool, typer.Option("--check-cost-model", help="Instead of choosing, check the cost model that predicts a new language's costs on the rows' own languages: each method's leave-one-language-out error, of the language facts' fit and of the other languages' mean, the one it picks and the error outside the pick. Each model is fitted on the first source holding its rows, then on all sources holding them.")] = False,
    csv: Annotated[Path | None, typer.Option(help="With --check-cost-model: also write its lines here, e.g. docs/bench/cost-model-loo.csv.")] = None,
) -> None:
    """The best recipe in a sweep for a language within a budget of the task's metric, and how to reproduce it.

    The budget is in points of the rows' headline metric: entity F1 for NER, accuracy for a POS
    tagger or a topic classifier, macro-F1 for sentiment (the flag keeps its name). Rows of two
    metrics are never chosen among together.

    For a language with no rows in the sweep, it predicts instead what each method would cost
    there, from the languages that have rows and cheap facts about the new one (training size,
    entity density, how the model's tokenizer reads it, script), with the prediction's
    leave-one-language-out error (ndogo.report.predict_cost).

    Each score is the mean over the sweep's seeds. The budget is read on dev (--split dev, the
    default): the test score is shown beside it and never used to choose. Example:

      ndogo recommend runs/sweeps/quickstart --lang hau --max-f1-drop 1 --optimize latency

    With several languages, one recipe for all of them: its mean dev loss over the languages is
    within --max-f1-drop, no language loses more than --max-worst-drop, and --min-smaller and
    --min-faster hold in every language; each language's numbers (dev and test Δ ± std over
    seeds, size and speed-up) are shown, with the mean, and where test breaks what dev met:

      ndogo recommend docs/bench/students-far-minilm.csv --lang hau,swa,yor --max-f1-drop 1 --max-worst-drop 2 \\
          --min-smaller 16 --min-faster 8

    When nothing qualifies, the error names the constraint that removed the last candidates and
    the closest one (its loss, size and speed): the frontier, not just "nothing".

    A language the atlas never ran, predicted from its committed rows (both corpora's languages):

      ndogo recommend docs/bench/atlas-minilm.csv --also docs/bench/atlas-mnr2.csv --lang xho \\
          --max-f1-drop 1 --data ../shared/data/masakhaner2

    With --ship DIR the chosen model is also written as a bundle with its model card (`ndogo ship`), its numbers
    taken from the sweep's row (the task's metrics on test and dev, per type or label, size, latency and
    machine, the baseline's cost).

    With --check-cost-model it checks the predictor instead, on the languages the rows hold; the
    committed check is made from the committed atlas (tests/test_predict_cost.py fails when they disagree):

      ndogo recommend docs/bench/atlas-minilm.csv --also docs/bench/atlas-mnr2.csv --also docs/bench/atlas-me5s.csv \\
          --check-cost-model --data ../shared/data/masakhaner --csv docs/bench/cost-model-loo.csv
    """
    if check_cost_model:
        given = [n for n, v in (("--lang", lang), ("--max-f1-drop", max_f1_drop), ("--ship", ship),
                                ("--max-worst-drop", max_worst_drop), ("--min-smaller", min_smaller),
                                ("--min-faster", min_faster)) if v is not None]
        if given:
            raise ValueError(f"{given[0]}: --check-cost-model checks the cost model on the rows' own languages; "
                             "it chooses nothing for one")
        quiet_libraries()
        from ndogo.report.predict_cost import check_cost_model as check
        from ndogo.report.predict_cost import format_check, write_check

        lines = check([directory, *(also or ())], near=data, fallback=rows_data, model=model)
        if csv is not None:
            write_check(lines, csv)
        typer.echo(json.dumps(lines, indent=2) if as_json else format_check(lines), nl=as_json)
        return
    if csv is not None:
        raise ValueError("--csv goes with --check-cost-model (its lines)")
    if lang is None or max_f1_drop is None:
        raise ValueError(f"{'--lang' if lang is None else '--max-f1-drop'}: required to choose a recipe "
                         "(e.g. --lang hau --max-f1-drop 1)")
    several = len(split_langs(lang)) > 1
    lang = lang if several else split_langs(lang)[0]
    if several and ship is not None:
        raise ValueError(f"--ship: a bundle is one language's model, and --lang names {len(split_langs(lang))}; "
                         "rerun with one --lang (the chosen recipe, for that language) to ship it")
    from ndogo.report.recommend import format_recommendation
    from ndogo.report.recommend import recommend as pick

    try:
        choice = pick(directory, lang, max_f1_drop, optimize, model, split, also or (),
                      max_worst_drop=max_worst_drop, min_smaller=min_smaller, min_faster=min_faster)
    except ValueError as err:
        if several or "no finished cells for language" not in str(err):  # several: no prediction, name the gap
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
    from ndogo.experiments.row import metric_label, metric_of

    label = metric_label(metric_of(rows[0]))  # the budget and every Δ in the rows' own metric
    return "\n\n".join(format_predictions(lang, predictions, budget, name if len(answers) > 1 else None, label)
                       for name, _, predictions in answers)


def register(app: typer.Typer) -> None:
    """Add `ndogo recommend` to the `ndogo` app."""
    app.command("recommend")(recommend)
