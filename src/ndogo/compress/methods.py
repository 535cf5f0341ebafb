"""A registry of methods per stage: one file per method, found by looking, not by a list.

torchao's `quantize_(model, Int8WeightOnlyConfig())` is the model: a method *is* its config
class, and a handler registered for that class does the work. Here a stage with methods
(quantize, prune) keeps a `MethodRegistry`; each method is one module inside the stage's
package that declares a config dataclass and registers it with its handler:

    @QUANTIZE.register("fp16")
    @dataclass
    class Fp16Config(QuantizeConfig):
        '''Every weight in half precision.'''

    QUANTIZE.handler(Fp16Config)(HalfHandler(torch.float16))

The methods are kept in a `ndogo.registry.Registry`, the one registry style of stages, methods
and saved kinds: it imports the modules of the stage's package the first time a method is asked
for (and again when a name is unknown, so a file added while a program runs is found), plus any
module named in $NDOGO_PLUGINS (comma-separated), for methods that live outside ndogo.
Recipes, sweeps, `ndogo compress` and the `ndogo quantize` / `ndogo prune` options all read
the method's config fields, so an option a method does not have is an error naming it.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ndogo.options import check_fields, field_help, option
from ndogo.registry import PLUGINS_ENV, Registry

__all__ = ["PLUGINS_ENV", "Method", "MethodConfig", "MethodRegistry", "field_help", "option", "resolved_hints"]


class MethodConfig:
    """Base of every method's config. `method` is the registered name, set by `register`."""

    method: ClassVar[str] = ""
    #: the stage's registry, set on the stage's base config class (recipes bind options through it)
    registry: ClassVar[MethodRegistry | None] = None

    def __post_init__(self) -> None:
        """Check every field against the bounds and choices its `option(...)` declares."""
        check_fields(self)

    def identity(self) -> dict[str, Any]:
        """What decides the output (the reuse key of a recipe stage): the method and its fields."""
        return {"method": self.method, **dataclasses.asdict(self)}  # type: ignore[call-overload]

    def record(self) -> dict[str, Any]:
        """What the saved model's ndogo.json keeps about how it was made."""
        return self.identity()


@dataclass(frozen=True)
class Method:
    """A registered method: its name, config class, handler and where it was defined."""

    name: str
    config_cls: type
    handler: Any
    module: str

    @property
    def summary(self) -> str:
        """The first line of the config's docstring: what `--help` says about the method."""
        doc = (self.config_cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    def options(self) -> list[dataclasses.Field]:
        """The method's own options (every init field of its config)."""
        return [f for f in dataclasses.fields(self.config_cls) if f.init]


class MethodRegistry:
    """The methods of one stage, discovered from the modules of `package`.

    `selectors` are the option names a recipe or config picks the method with: `method`, and
    for distillation also `mode`, its name from before its modes were methods.
    """

    def __init__(self, stage: str, package: str, base: type, default: str | None = None,
                 selectors: tuple[str, ...] = ("method",)) -> None:
        self.stage, self.package, self.base, self.default = stage, package, base, default
        self.selectors = selectors
        self._methods: Registry[Method] = Registry(f"{stage} method", packages=(package,), plugins=True)
        self._configs: dict[type, str] = {}
        self._handlers: dict[type, Any] = {}

    # ------------------------------------------------------------ registering

    def register(self, name: str, handler: Any = None) -> Callable[[type], type]:
        """Class decorator: register a config dataclass as method `name` (with its handler, or later)."""

        def wrap(cls: type) -> type:
            if not (dataclasses.is_dataclass(cls) and issubclass(cls, self.base)):
                raise TypeError(f"{self.stage} method {name!r}: {cls.__qualname__} must be a dataclass "
                                f"subclassing {self.base.__qualname__}")
            other = self._methods.loaded().get(name)
            if other is not None and other.config_cls.__qualname__ != cls.__qualname__:
                raise ValueError(f"{self.stage} method {name!r} is registered twice ({other.module} "
                                 f"and {cls.__module__})")
            cls.method = name  # type: ignore[attr-defined]
            self._configs[cls] = name
            if handler is not None:
                self._handlers[cls] = handler
            self._methods.add(name, Method(name, cls, self._handlers.get(cls), cls.__module__))
            return cls

        return wrap

    def handler(self, cls: type) -> Callable[[Any], Any]:
        """Decorator (or call) attaching a handler to an already registered config class."""

        def wrap(handler: Any) -> Any:
            name = self._configs[cls]
            self._handlers[cls] = handler
            self._methods.add(name, dataclasses.replace(self._methods.loaded()[name], handler=handler))
            return handler

        return wrap

    # ------------------------------------------------------------ looking up

    def discover(self) -> None:
        """Import every module of the package and of $NDOGO_PLUGINS not imported yet."""
        self._methods.discover()

    def names(self) -> list[str]:
        """Every method name, in registration order."""
        return self._methods.names()

    def get(self, name: str) -> Method:
        """The method called `name`; an unknown name is a ValueError listing the known ones."""
        method = self._methods.get(name)
        if method.handler is None:
            raise ValueError(f"{self.stage} method {name!r} ({method.module}) registers no handler")
        return method

    def pick(self, options: dict[str, Any]) -> str | None:
        """Take the method's name out of recipe or config options (any of `selectors`; two is an error)."""
        given = [k for k in self.selectors if k in options]
        if len(given) > 1:
            raise ValueError(f"give the {self.stage} method once, not as both {' and '.join(given)}")
        return options.pop(given[0]) if given else None

    def of(self, config: Any) -> Method:
        """The method a config object belongs to."""
        name = self._configs.get(type(config))
        if name is None:
            raise TypeError(f"{type(config).__qualname__} is not a registered {self.stage} method config")
        return self.get(name)

    def config(self, name: str | None = None, /, **options: Any) -> Any:
        """Build method `name`'s config from options; an option it does not take is an error naming it."""
        method = self.get(name or self._require_default())
        fields = {f.name for f in method.options()}
        wrong = [k for k in options if k not in fields]
        if wrong:
            takes = ", ".join(sorted(fields)) or "no options"
            raise ValueError(f"{self.stage} method {method.name} has no option {wrong[0]!r} (it takes {takes})")
        return method.config_cls(**options)

    def config_class(self, name: str | None) -> type:
        """The config class of method `name` (the default method when None)."""
        return self.get(name or self._require_default()).config_cls

    def from_record(self, record: dict[str, Any]) -> Any:
        """A config rebuilt from a saved model's record, ignoring fields this version does not know."""
        name = record.get("method") or self._require_default()
        cls = self.config_class(name)
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        return cls(**{k: v for k, v in record.items() if k in known})

    def _require_default(self) -> str:
        if self.default is None:
            raise ValueError(f"{self.stage} needs a method; choose one of {', '.join(self.names())}")
        return self.default


def resolved_hints(cls: type) -> dict[str, Any]:
    """A config class's field types, resolved (the modules use `from __future__ import annotations`)."""
    return typing.get_type_hints(cls)
