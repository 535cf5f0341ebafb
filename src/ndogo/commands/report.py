"""`ndogo report`: tables, plots and one HTML page from a sweep's rows, or the sweep table of several sources."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ndogo.commands._common import split_langs, user_errors


@user_errors
def report(
    sources: Annotated[list[Path], typer.Argument(help="Sweep directories (holding results.sqlite) or CSVs of their "
                                                       "rows (e.g. the committed docs/bench/atlas-minilm.csv); after "
                                                       "the first, as --also.")],
    out: Annotated[Path | None, typer.Option(help="Report folder: results.csv, results.md, PNG plots, index.html.")] = None,
    also: Annotated[list[Path] | None, typer.Option(help="More rows to report with it (repeatable): a sweep directory or "
                                                         "CSV holding more seeds of the same cells, e.g. "
                                                         "docs/bench/atlas-seeds.csv.")] = None,
    facts: Annotated[list[Path] | None, typer.Option(help="Language facts to show instead of computing them "
                                                          "(repeatable): CSVs of `ndogo data stats --facts`, which "
                                                          "also hold the share of test words trimming re-splits.")] = None,
    table: Annotated[bool, typer.Option("--table", help="Print the sweep table instead of writing a report: every "
                                                        "recipe against its language's baseline (dev and test F1 "
                                                        "with their Δ, size and latency as ratios), the sources "
                                                        "merged (a cell in several is taken from the last); "
                                                        "rows of several tasks make a table per task.")] = False,
    seeds: Annotated[bool, typer.Option("--seeds", help="The sweep table with one line per language and recipe over "
                                                        "its seeds (mean ± std), then each recipe over the "
                                                        "languages: the view of a multi-seed sweep.")] = False,
    pivot: Annotated[bool, typer.Option("--pivot", help="The sweep table with one line per language: the baseline's "
                                                        "test F1, then each recipe's test ΔF1 (the atlas's layout).")] = False,
    lang: Annotated[str | None, typer.Option(help="With --table: keep only these languages (comma-separated).")] = None,
    recipe: Annotated[str | None, typer.Option(help="With --table: keep only these recipes (comma-separated; the "
                                                    "baseline is always kept).")] = None,
    csv: Annotated[Path | None, typer.Option(help="With --table: write the merged rows here, in results.csv's "
                                                  "columns (failed cells too; with --lang or --recipe only those "
                                                  "kept, so never name a source you filter).")] = None,
    fill_data: Annotated[Path | None, typer.Option(metavar="ROOT", help="With --table: the corpus of rows written "
                                                                       "before rows recorded theirs (the root they "
                                                                       "were measured on).")] = None,
    data_from: Annotated[list[str] | None, typer.Option(metavar="OLD=NEW", help="With --table: rows measured on a "
                                                                               "copy OLD of a corpus name the corpus "
                                                                               "NEW itself (repeatable).")] = None,
) -> None:
    """Tables (F1 and Δ to the baseline per language and method, mean ± std over seeds), plots and one HTML page.

    Rows of several tasks (NER and topic, say) get a section per task, each with its own tables,
    averages and plots in its own metric.

    index.html is self-contained (plots inlined) and records the config and the
    environment (package versions, CPU, threads).

    Example: ndogo report runs/sweeps/quickstart --out runs/sweeps/quickstart/report

    Example, the atlas (both NER corpora, both models, the seed spread, the language facts, and each
    task atlas's rows in a section of its own):
    ndogo report docs/bench/atlas-minilm.csv --also docs/bench/atlas-seeds.csv
    --also docs/bench/atlas-me5s.csv --also docs/bench/atlas-mnr2.csv --also docs/bench/atlas-topic-minilm.csv
    --also docs/bench/atlas-pos-minilm.csv --facts docs/bench/atlas-facts.csv --facts docs/bench/atlas-facts-mnr2.csv --out docs/atlas

    With --table (or --seeds, --pivot) it prints one markdown table of every source instead,
    and --csv brings a committed CSV up to date with a new sweep's rows:

    Example: ndogo report docs/bench/atlas-me5s.csv runs/atlas-me5s-amh --table --csv docs/bench/atlas-me5s.csv
    """
    sources = [*sources, *(also or [])]
    if table or seeds or pivot:
        if seeds and pivot:
            raise ValueError("--seeds and --pivot are two layouts of the table; choose one")
        if out is not None or facts:
            raise ValueError(f"{'--out' if out is not None else '--facts'} writes a report; --table prints the "
                             "sweep table (its rows with --csv)")
        typer.echo(sweep_table(sources, seeds, pivot, lang, recipe, csv, fill_data, data_from or []), nl=False)
        return
    given = [name for name, value in (("--lang", lang), ("--recipe", recipe), ("--csv", csv),
                                      ("--fill-data", fill_data), ("--data-from", data_from)) if value]
    if given:
        raise ValueError(f"{given[0]} goes with --table (the sweep table); a report's rows are its results.csv")
    if out is None:
        raise ValueError("--out: name the report folder (or print the sweep table with --table)")
    from ndogo.report import write_report

    files = write_report(sources[0], out, also=sources[1:], facts=facts or ())
    for path in files:
        typer.echo(str(path))


def sweep_table(sources: list[Path], seeds: bool, pivot: bool, lang: str | None, recipe: str | None,
                csv: Path | None, fill_data: Path | None, data_from: list[str]) -> str:
    """The merged rows of every source as one markdown table (ndogo.report.sweep_table), written with --csv;
    rows of several tasks as a table per task."""
    from ndogo.report.build import write_csv
    from ndogo.report.sweep_table import merge_sources, per_task, pivot_table, ratio_table, seed_table

    moved = {}
    for pair in data_from:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise ValueError(f"--data-from {pair!r}: expected OLD=NEW")
        moved[old] = str(Path(new).resolve())
    rows = merge_sources(sources, set(split_langs(lang)) if lang else None,
                         {x.strip() for x in recipe.split(",") if x.strip()} if recipe else None, moved, fill_data)
    if csv is not None:
        write_csv(rows, csv)
    return per_task(rows, seed_table if seeds else pivot_table if pivot else ratio_table)  # a table per task


def register(app: typer.Typer) -> None:
    """Add `ndogo report` to the `ndogo` app."""
    app.command("report")(report)
