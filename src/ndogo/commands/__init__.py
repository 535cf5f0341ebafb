"""The `ndogo` commands, each in the module its name says (`trim-vocab` in trim.py, `data stats` in data.py).

Every module here defines `register(app)` that adds its commands to the `ndogo` Typer app;
`ndogo.cli` calls them all, so a new command never edits cli.py. Modules starting with `_`
hold what the commands share (`_common.py`, `_options.py`).
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

# The order `ndogo --help` lists them in: a user's path from a corpus to a served model, then the
# studies. A module not named here is listed after these, in alphabetical order.
ORDER = ("data", "score", "finetune", "pretrain", "evaluate", "compress", "prune", "densify", "quantize",
         "distill", "trim", "export", "predict", "ship", "serve", "bench", "sweep", "report", "recommend", "docs")


def register_all(app: typer.Typer) -> None:
    """Import each module of this package and let it add its commands."""
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    for name in sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)):
        importlib.import_module(f"{__name__}.{name}").register(app)
