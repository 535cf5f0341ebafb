"""`ndogo report`: tables, plots and one HTML page from a sweep's rows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ndogo.commands._common import user_errors


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


def register(app: typer.Typer) -> None:
    """Add `ndogo report` to the `ndogo` app."""
    app.command("report")(report)
