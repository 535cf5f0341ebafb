"""The `ndogo` command line: builds the app and registers every command of `ndogo.commands`.

Each command lives in the module of `ndogo/commands/` its name says and is a thin layer over
the Python API. Errors a user can fix (a bad data line, a missing model, misaligned files) are
printed as one line naming the file and line, with exit code 2, never a traceback
(`commands/_common.py: user_errors`).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ndogo.console import quiet_imports, quiet_libraries

quiet_imports()

from ndogo.commands import register_all  # noqa: E402  (after quiet_imports: the commands import libraries)
from ndogo.commands._common import Group  # noqa: E402

app = typer.Typer(
    help="ndogo: make small-data African language models (NER, POS, topic, sentiment) smaller and faster, and measure what it costs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=Group,
)


def _version(value: bool) -> None:
    if value:
        from ndogo import __version__

        typer.echo(f"ndogo {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print ndogo's version and exit.")] = False,
) -> None:
    """ndogo: make small-data African language models (NER, POS, topic, sentiment) smaller and faster, and measure what it costs."""
    quiet_libraries()  # every command: third-party noise stays off the terminal


register_all(app)


def main() -> None:
    """Entry point for `python -m ndogo`."""
    app()


if __name__ == "__main__":
    sys.exit(main())
