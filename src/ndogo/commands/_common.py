"""What every command shares: one-line user errors, the command group, and small option helpers.

Commands import these from here, never from `ndogo.cli`: cli.py is the top of the layers
(it builds the app and registers the commands), so nothing below it imports it.
"""

from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path
from typing import Any

import typer
from typer import _click as click
from typer.core import TyperGroup

from ndogo.console import quiet_libraries

__all__ = ["Group", "emit", "keep_examples", "os_error_line", "quiet_libraries", "refuse_used_out", "split_langs",
           "user_errors"]


def keep_examples(text: str | None) -> str | None:
    """Help text whose example paragraphs (those holding an `ndogo ...` command) are printed as written.

    Click rewraps every paragraph to the terminal, which splits a command line at its hyphens
    (`atlas-` / `seeds.csv`); a paragraph after a line of "\\b" is left as it is, so it can be copied.
    """
    if not text:
        return text
    paragraphs = text.split("\n\n")
    for i, par in enumerate(paragraphs):
        lines = par.strip("\n").splitlines()
        if lines and lines[0].strip() != "\b" and any(
                line.strip().startswith("ndogo ") or ": ndogo " in line for line in lines):
            paragraphs[i] = "\b\n" + par.strip("\n")
    return "\n\n".join(paragraphs)


class Group(TyperGroup):
    """ndogo's command group: usage errors as one `error:` line, help that is never cut off.

    Help is Click's plain layout (rich_markup_mode=None): rich's option table, squeezed into
    80 columns, cut option names short (`--max-train-sent…`) and read `[models.X]` in help
    texts as markup. Click wraps instead, and never truncates.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for command in self.commands.values():
            command.help = keep_examples(command.help)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Click's standalone handling, with a usage error (a missing option, a bad value) as one line."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as err:
            err.show()  # the help, as Click shows it
            sys.exit(err.exit_code)
        except click.exceptions.UsageError as err:
            where = f" (see `{err.ctx.command_path} --help`)" if err.ctx is not None else ""
            typer.echo(f"error: {err.format_message()}{where}", err=True)
            sys.exit(err.exit_code)
        except click.exceptions.ClickException as err:
            typer.echo(f"error: {err.format_message()}", err=True)
            sys.exit(err.exit_code)
        except typer.Abort:  # (typer's vendored click has no exceptions.Abort: naming it there hid every traceback)
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)  # (not standalone, Click returns an Exit's code)


def user_errors(fn: Any) -> Any:
    """Turn the errors a user can fix into one clear line and exit code 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ndogo.data.conll import DataError
        from ndogo.metrics.entity import AlignmentError
        from ndogo.models.loading import ModelError

        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt as err:
            # Training saves a checkpoint first and says where (TrainingInterrupted); anything else just stops.
            typer.echo(f"interrupted: {err}" if str(err) else "interrupted", err=True)
            raise typer.Exit(130) from None
        except (DataError, AlignmentError, ModelError, FileNotFoundError, ValueError) as err:
            typer.echo(f"error: {os_error_line(err) if isinstance(err, OSError) else err}", err=True)
            raise typer.Exit(2) from None
        except OSError as err:
            # A path the user gave that is a folder, unreadable, or not a folder: say which,
            # without a traceback. OSErrors with no path are not the user's input; let them show.
            if err.filename is None:
                raise
            typer.echo(f"error: {os_error_line(err)}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def os_error_line(err: OSError) -> str:
    """`path: reason` for an OSError about a path (Python's own wording repeats the errno)."""
    if err.filename is None or not err.strerror:
        return str(err)
    return f"{err.filename}: {err.strerror.lower()}"


def refuse_used_out(out: Path) -> None:
    """Refuse an --out that already holds files, before any work.

    Stages that write a model into a folder do not clear it first: another model's
    weights left there would be counted in size_bytes and could even be loaded in place
    of the new one (a sparse file beside a dense one), and the source model itself
    would be overwritten if named as --out.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out}: already exists and is not empty; choose a new output directory")


def emit(result: dict[str, Any], as_json: bool, table: Any = None) -> None:
    """Print JSON on stdout, or a rich table for people."""
    if as_json or table is None:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        from rich.console import Console

        Console().print(table)


def split_langs(lang: str) -> list[str]:
    """Language codes of a comma-separated `--lang`; none at all is an error, not an empty run."""
    langs = [x.strip() for x in lang.split(",") if x.strip()]
    if not langs:
        raise ValueError(f"--lang {lang!r}: give at least one language code, e.g. hau or hau,yor")
    return langs
