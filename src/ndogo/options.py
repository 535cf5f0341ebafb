"""Config fields that carry their own command-line help: options declared once.

Every setting a user can give lives in one dataclass field (a method's config, the
fine-tuning, distillation, trimming or pretraining config, a sweep's model, evaluation and
resources tables, the server's limits). `option(...)` attaches the help text, bounds,
choices and flag name to the field; `ndogo.commands._options` turns those fields into
Typer options, and `bind` builds the same dataclass from any other source of raw values (a
recipe stage's `key=value` options, a TOML table), checking each value against its field's
type, bounds and choices and naming where it is written. So the command line, recipes,
sweep configs and the server cannot drift apart, and no setting is checked by hand twice.
This module imports nothing of ndogo, so every layer may use it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


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


class OptionError(ValueError):
    """A setting that does not fit its option. A config's own `check()` raises it with `key` to have
    the binder name that key (`evaluate.lock: ...`) rather than only the table."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def required(f: dataclasses.Field) -> bool:
    """Whether a field has no default (the binder then needs a value for it)."""
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def bind(cls: type[T], values: Mapping[str, Any], where: str = "", *, fixed: Mapping[str, Any] | None = None,
         hidden: Collection[str] = (), also: Sequence[str] = (), takes: str | None = None,
         noun: str = "option") -> T:
    """Option dataclass `cls` from raw values (a TOML table, a recipe stage's options), checked.

    Each value is checked against its field's type (`convert`: a string where a list is
    expected is a list of one, a `sep` field's string is split, an int where a float is
    expected is a float), the config is built (its `__post_init__` and `check()` run), and
    every value against the bounds and choices its `option(...)` declares. Every error is one
    ValueError naming where: `{where}.{key}: ...` for one value, `{where}: ...` for the config;
    an unknown key lists the keys `takes` (the table or stage, default the class) takes: its
    fields but those `hidden`, then `also` (keys the caller took out before, e.g. a method's
    name). A hidden field is not the source's to set (a recipe's `out`, which the chain sets;
    a model table's name, which is its key): the caller gives it in `fixed`.
    """
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    settable = [n for n in fields if n not in hidden]
    kwargs: dict[str, Any] = dict(fixed or {})
    for key, value in values.items():
        if key not in fields or key in hidden:
            raise OptionError(f"{_at(where, key)}: unknown {noun}; {takes or cls.__name__} takes "
                              f"{', '.join([*settable, *also]) or 'nothing'}")
        kwargs[key] = convert(value, hints.get(key, Any), _at(where, key), fields[key])
    missing = [n for n in fields if n not in kwargs and required(fields[n])]
    if missing:
        raise OptionError(f"{_at(where, missing[0])}: required {noun} missing")
    try:
        config = cls(**kwargs)
        # a config checks what its declarations cannot say (one field against another) in
        # __post_init__ or, by convention, in check()
        check = getattr(config, "check", None)
        if callable(check):
            check()
        # and every value against its declared bounds and choices, whether or not the config
        # checks them itself (trim's are only read when it runs, an hour into a sweep otherwise)
        check_fields(config)
    except OptionError as err:
        at = _at(where, err.key) if err.key else where
        raise OptionError(f"{at}: {err}" if at else str(err)) from None
    except (ValueError, TypeError) as err:
        raise OptionError(f"{where}: {err}" if where else str(err)) from None
    return config


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def convert(value: Any, hint: Any, where: str, f: dataclasses.Field | None = None) -> Any:
    """A raw value checked (and gently converted) against a field's annotation, or an OptionError naming `where`.

    Written here rather than with a validation framework: the configs are plain dataclasses
    of ints, floats, strings, lists and Literals, and these few lines are all they need.
    """
    sep = f.metadata.get("sep") if f is not None else None
    if sep and isinstance(value, str) and _is_list(hint):
        item = (typing.get_args(plain_hint(hint)) or (str,))[0]
        parts = [x.strip() for x in value.split(sep) if x.strip()]
        if not parts:  # "" or "," would otherwise quietly mean the config's default
            raise OptionError(f"{where} {value!r}: give at least one {f.metadata.get('item') or 'value'}")
        try:
            value = [item(x) for x in parts]
        except ValueError:
            raise OptionError(f"{where} {value!r}: expected {sep}-separated {item.__name__} values") from None
    return _check_type(value, hint, where)


def plain_hint(hint: Any) -> Any:
    """`X | None` -> X."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _is_list(hint: Any) -> bool:
    plain = plain_hint(hint)
    return typing.get_origin(plain) in (list, tuple, Sequence) or plain in (list, tuple)


def _check_type(value: Any, hint: Any, where: str) -> Any:
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _check_type(value, arg, where)
            except OptionError as err:
                errors.append(str(err))
        if len(errors) == 1:
            raise OptionError(errors[0])
        names = " or ".join(_name(a).replace("NoneType", "nothing") for a in args)
        raise OptionError(f"{where}: expected {names}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise OptionError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        if isinstance(value, str):
            value = [value]  # a single language where a list is expected
        if not isinstance(value, list | tuple):
            raise OptionError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_check_type(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or hint is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise OptionError(f"{where}: expected a table, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise OptionError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise OptionError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OptionError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise OptionError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (list, tuple) or hint in (list, tuple):
        return "list"  # what TOML, YAML and a recipe call a sequence
    if origin is not None and origin not in (typing.Union, types.UnionType, typing.Literal):
        return getattr(origin, "__name__", str(origin))
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")

