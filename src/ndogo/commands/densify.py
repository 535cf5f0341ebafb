"""`ndogo densify`: a sparse-stored pruned model as a plain Hugging Face directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ndogo.commands._common import quiet_libraries, refuse_used_out, user_errors


def densify(
    run: Annotated[Path, typer.Argument(help="A model saved as kind sparse (or hf).")],
    out: Annotated[Path, typer.Option(help="Where the plain Hugging Face directory is written.")],
) -> None:
    """Write a sparse-stored pruned model as a plain Hugging Face directory (same weights, dense file).

    The result loads with AutoModelForTokenClassification / the token-classification pipeline.

    Example: ndogo densify runs/prune/hau-s60 --out runs/prune/hau-s60-hf
    """
    quiet_libraries()
    refuse_used_out(out)
    from ndogo.compress.prune import densify as run_densify

    typer.echo(f"saved {run_densify(run, out)}")


def register(app: typer.Typer) -> None:
    """Add `ndogo densify` to the `ndogo` app."""
    app.command("densify")(user_errors(densify))
