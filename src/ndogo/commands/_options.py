"""Command-line options generated from config dataclasses, so the CLI and the configs cannot drift.

A stage's command (`ndogo quantize`, `ndogo prune`) takes its arguments (the model, --out,
--method...) by hand and every method option from the methods' config classes: the field's
name is the flag, its type the option's type, and `option(help=..., min=..., flag=...)`
metadata its help text, bounds and flag name. An option that only some methods take says
which in its help, and passing it to another method is an error naming both. Typer reads a
command's parameters from its signature, so the generated ones are given as `__signature__`.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from ndogo.compress.methods import Method, field_help


def _plain(hint: Any) -> Any:
    """`X | None` -> X (every generated option defaults to None: "the method's own default")."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def flag(field: dataclasses.Field) -> str:
    """The command-line flag of a config field: its `flag` metadata or --field-name."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def method_options(methods: Sequence[Method], skip: Sequence[str] = ()) -> list[inspect.Parameter]:
    """One keyword parameter (a Typer option, default None) per option of any of `methods`."""
    seen: dict[str, tuple[dataclasses.Field, Any, list[str]]] = {}
    for method in methods:
        hints = typing.get_type_hints(method.config_cls)
        for f in method.options():
            if f.name not in skip:
                seen.setdefault(f.name, (f, hints.get(f.name, str), []))[2].append(method.name)
    params = []
    for name, (f, hint, owners) in seen.items():
        text = field_help(f)
        if len(owners) < len(methods):
            text = f"{', '.join(owners)}: {text}"
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            text += " (required)"
        if f.metadata.get("choices"):
            text += f"; one of {', '.join(f.metadata['choices'])}"
        if f.default is not dataclasses.MISSING and f.default is not None:
            text += f" (default {f.default})"  # not [default: …]: square brackets are rich markup
        plain = _plain(hint)
        bounds = {k: f.metadata[k] for k in ("min", "max") if f.metadata.get(k) is not None
                  and plain in (int, float)}
        decls = [flag(f)] if plain is not bool else [f"{flag(f)}/--no-{flag(f)[2:]}"]
        info = typer.Option(*decls, help=text, show_default=False, **bounds)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation=Annotated[plain | None, info]))
    return params


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
    try:
        return method.config_cls(**set_)
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
    return command


def parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    """The parameters of a hand-written function, as keyword-only (to sit before generated ones)."""
    sig = inspect.signature(fn, eval_str=True)
    return [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in sig.parameters.values()]
