"""Commands of the compression stages and deployment, each in its own module.

Every module here defines `register(app)` that adds its commands to the `ndogo`
Typer app; `ndogo.cli` calls them all, so a new stage never edits cli.py.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer


def register_all(app: typer.Typer) -> None:
    """Import each module of this package and let it add its commands."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # helpers shared by the commands (_options.py)
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(app)
