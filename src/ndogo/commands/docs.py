"""`ndogo docs-tables`: rebuild the tables of docs/results.md and README.md from the committed CSVs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def docs_tables(
    root: Annotated[Path, typer.Option(help="The repository root (holding README.md, docs/results.md and docs/bench/).")] = Path("."),
    check: Annotated[bool, typer.Option(help="Write nothing; exit 1 if a table differs from what the CSVs give (for tests and CI).")] = False,
) -> None:
    """Rebuild every generated table of docs/results.md and README.md from docs/bench/*.csv.

    Only the regions between `<!-- generated: NAME -->` and `<!-- end generated -->` are
    rewritten; the prose around them is left as it is. Run it after committing new rows, so
    that one quantity has one value everywhere.

    Example: ndogo docs-tables --check
    """
    # Not ndogo.cli.user_errors: it imports torch, and this command reads CSVs only.
    from ndogo.report.reference import COMMAND, regenerate

    try:
        changed = regenerate(root, check=check)
    except (ValueError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    if check and changed:
        typer.echo(f"error: {len(changed)} generated table(s) differ from the committed CSVs ({', '.join(changed)}); "
                   f"run: {COMMAND}", err=True)
        raise typer.Exit(1)
    if check:
        typer.echo("every generated table matches the committed CSVs")
    else:
        typer.echo(f"rewrote {len(changed)} table(s)" + (f": {', '.join(changed)}" if changed else " (all were current)"))


def register(app: typer.Typer) -> None:
    """Add `ndogo docs-tables` to the `ndogo` app."""
    app.command("docs-tables")(docs_tables)
