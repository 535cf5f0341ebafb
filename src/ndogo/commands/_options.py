"""Command-line options generated from config dataclasses, so the CLI and the configs cannot drift.

A command takes its arguments (the model, --out, --method...) by hand and every setting
from a config class: the field's name is the flag, its type the option's type, and
`option(help=..., min=..., flag=..., sep=...)` metadata (`ndogo.options`) its help text,
bounds and flag name. `ndogo quantize` / `ndogo prune` read the options of every registered
method (an option that only some methods take says which in its help, and passing it to
another method is an error naming both); `ndogo finetune`, `distill`, `pretrain` and
`trim-vocab` read their stage's config. Every generated option defaults to None, "not
given", so the config's own default applies. Typer reads a command's parameters from its
signature, so the generated ones are given as `__signature__`.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from ndogo.compress.methods import Method
from ndogo.options import bind, convert, field_help, plain_hint


def flag(field: dataclasses.Field) -> str:
    """The command-line flag of a config field: its `flag` metadata or --field-name."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def _parameter(f: dataclasses.Field, hint: Any, prefix: str = "") -> inspect.Parameter:
    """The Typer option of one config field (default None: the config's default applies)."""
    text = prefix + field_help(f)
    required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    plain = plain_hint(hint)
    if required and plain is not hint:
        required = False  # `X | None` without a default: None is a value the config takes
    if required:
        text += " (required)"
    if f.metadata.get("choices"):
        text = text.rstrip(".") + f"; one of {', '.join(f.metadata['choices'])}."
    if f.default is not dataclasses.MISSING and f.default is not None and f.default != "":
        text += f" (default {f.default})"  # not [default: …]: square brackets are rich markup
    if f.metadata.get("sep"):
        plain = str  # one option, split at the separator
        sep = f.metadata["sep"]
        text += f" ({'comma' if sep == ',' else repr(sep)}-separated)"
    bounds = {k: f.metadata[k] for k in ("min", "max") if f.metadata.get(k) is not None and plain in (int, float)}
    decls = [flag(f)] if plain is not bool else [f"{flag(f)}/--no-{flag(f)[2:]}"]
    info = typer.Option(*decls, help=text, show_default=False, **bounds)
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[plain | None, info])


def method_options(methods: Sequence[Method], skip: Sequence[str] = ()) -> list[inspect.Parameter]:
    """One keyword parameter (a Typer option, default None) per option of any of `methods`."""
    seen: dict[str, tuple[dataclasses.Field, Any, list[str]]] = {}
    for method in methods:
        hints = typing.get_type_hints(method.config_cls)
        for f in method.options():
            if f.name not in skip:
                seen.setdefault(f.name, (f, hints.get(f.name, str), []))[2].append(method.name)
    return [_parameter(f, hint, f"{', '.join(owners)}: " if len(owners) < len(methods) else "")
            for f, hint, owners in seen.values()]


def config_fields(cls: type, skip: Sequence[str] = ()) -> list[dataclasses.Field]:
    """The fields of `cls` a command line sets: init fields with help, not in `skip`, not dicts."""
    hints = typing.get_type_hints(cls)
    return [f for f in dataclasses.fields(cls) if f.init and f.name not in skip
            and typing.get_origin(plain_hint(hints[f.name])) is not dict and plain_hint(hints[f.name]) is not dict]


def config_options(cls: type, skip: Sequence[str] = ()) -> list[inspect.Parameter]:
    """One Typer option per settable field of config class `cls` (see `config_fields`)."""
    hints = typing.get_type_hints(cls)
    missing = [f.name for f in config_fields(cls, skip) if not field_help(f)]
    if missing:  # a setting with no help text is a bug in the config, not something to ship
        raise TypeError(f"{cls.__qualname__}: fields without option(help=...): {', '.join(missing)}")
    return [_parameter(f, hints[f.name]) for f in config_fields(cls, skip)]


def config_from_options(cls: type, given: dict[str, Any], fixed: dict[str, Any] | None = None,
                        skip: Sequence[str] = ()) -> Any:
    """Config `cls` from the generated options the user gave (None = not given) and the fixed values.

    A `sep` field's text is split (and its items converted to the list's item type); a
    required field not given is an error naming its flag. The config is built by
    `ndogo.options.bind`, as recipes, sweep configs and the server build theirs.
    """
    hints = typing.get_type_hints(cls)
    values = dict(fixed or {})
    for f in config_fields(cls, skip):
        if f.name in values:
            continue
        value = given.get(f.name)
        if value is None:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                if plain_hint(hints[f.name]) is hints[f.name]:
                    raise typer.BadParameter(f"{flag(f)} is required", param_hint=flag(f))
                values[f.name] = None
            continue
        values[f.name] = convert(value, hints[f.name], flag(f), f)  # a `sep` option's text is split
    return bind(cls, values)  # its ValueErrors reach the user as one "error:" line


def methods_help(methods: Sequence[Method], shared: type | None = None) -> str:
    """The methods and their own options (not those of the `shared` base config), for a command's docstring."""
    common = {f.name for f in dataclasses.fields(shared)} if shared and dataclasses.is_dataclass(shared) else set()
    lines = []
    for m in methods:
        opts = ", ".join(flag(f) for f in m.options() if f.name not in common)
        lines.append(f"  {m.name}: {m.summary}" + (f" Options: {opts}." if opts else ""))
    return "\n\n".join(lines)


def build_config(method: Method, given: dict[str, Any], flags: dict[str, str]) -> Any:
    """Method `method`'s config from the options the user gave (None = not given)."""
    fields = {f.name for f in method.options()}
    set_ = {k: v for k, v in given.items() if v is not None}
    wrong = [k for k in set_ if k not in fields]
    if wrong:
        takes = ", ".join(flags[f.name] for f in method.options() if f.name in flags) or "no options of its own"
        raise typer.BadParameter(f"{flags.get(wrong[0], wrong[0])} does not apply to method {method.name} "
                                 f"(it takes {takes})")
    required = [f.name for f in method.options() if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING and f.name not in set_]
    if required:
        raise typer.BadParameter(f"method {method.name} needs {flags.get(required[0], required[0])}")
    hints = typing.get_type_hints(method.config_cls)
    options = {f.name: f for f in method.options()}
    # a `sep` option's text is split; a bad item is a ValueError naming the flag (one `error:` line)
    values = {k: convert(v, hints[k], flags.get(k, k), options[k]) for k, v in set_.items()}
    try:
        return bind(method.config_cls, values)
    except ValueError as err:
        raise typer.BadParameter(f"method {method.name}: {err}") from None


def with_signature(fn: Callable[..., Any], name: str, doc: str, fixed: Sequence[inspect.Parameter],
                   generated: Sequence[inspect.Parameter]) -> Callable[..., Any]:
    """`fn(**kwargs)` as a command whose parameters are `fixed` then `generated`."""

    def command(**kwargs: Any) -> Any:
        return fn(**kwargs)

    command.__signature__ = inspect.Signature([*fixed, *generated])  # type: ignore[attr-defined]
    command.__name__ = command.__qualname__ = name
    command.__doc__ = doc
    command.__module__ = fn.__module__  # the command belongs to the module that holds its body
    return command


def parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    """The parameters of a hand-written function, as keyword-only (to sit before generated ones)."""
    sig = inspect.signature(fn, eval_str=True)
    return [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in sig.parameters.values()]
