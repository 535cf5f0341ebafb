"""Config fields that carry their own command-line help: options declared once.

Every setting a user can give lives in one dataclass field (a method's config, the
fine-tuning, distillation, trimming or pretraining config). `option(...)` attaches the
help text, bounds, choices and flag name to the field; `ndogo.commands._options` turns
those fields into Typer options, and recipes and sweep configs bind the same fields by
name, so the command line, recipes and sweeps cannot drift apart. This module imports
nothing of ndogo, so every layer may use it.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def option(default: Any = dataclasses.MISSING, *, help: str, min: float | None = None,
           max: float | None = None, flag: str | None = None, choices: tuple[str, ...] | None = None,
           sep: str | None = None, item: str | None = None) -> Any:
    """A config field with the metadata the command line is generated from.

    `flag` names the option when the field's name is not the flag (`langs` is --lang);
    `sep` makes a list field one comma-separated option (--lang hau,swa) rather than a
    repeatable one (--exclude-eval A --exclude-eval B), and `item` says what one item is
    when none is given ("--lang ',': give at least one language code").
    """
    metadata = {"help": help, "min": min, "max": max, "flag": flag, "choices": choices, "sep": sep, "item": item}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def field_help(f: dataclasses.Field) -> str:
    """The help text of a config field (its metadata's `help`)."""
    return str(f.metadata.get("help", ""))


def check_fields(config: Any) -> None:
    """Refuse a value outside the bounds or choices its field's `option(...)` declares."""
    for f in dataclasses.fields(config):
        value, meta = getattr(config, f.name), f.metadata
        if value is None or isinstance(value, bool):
            continue
        if meta.get("choices") and value not in meta["choices"]:
            raise ValueError(f"{f.name} must be one of {', '.join(meta['choices'])}, not {value!r}")
        if isinstance(value, (int, float)):
            if value != value:  # NaN
                raise ValueError(f"{f.name} must be a number, not NaN")
            if meta.get("min") is not None and value < meta["min"]:
                raise ValueError(f"{f.name} must be >= {meta['min']}, not {value}")
            if meta.get("max") is not None and value > meta["max"]:
                raise ValueError(f"{f.name} must be <= {meta['max']}, not {value}")
