"""Named things found by importing the module that defines them: one registry style for stages,
methods and saved kinds.

A recipe names a stage (`prune`), a stage names a method (`quantize:method=onnx-int8`), a saved
model names its kind (`"kind": "sparse"` in ndogo.json). Each name is looked up in a `Registry`,
and each registry finds what it does not hold yet the same way, without importing everything up
front (a stage pulls in torch; loading an int8 model must not import distillation):

- `modules`: a table of name -> the module that registers it, imported when the name is asked
  for (kinds, stages). `on_import(name, module)` may build the entry from the module instead
  (a stage is the module's function of that name), for modules that do not register themselves;
- `packages`: packages whose every module not starting with `_` is imported when a name is
  unknown (a method is one file of its stage's package), plus those named in `$NDOGO_PLUGINS`.

An unknown name is a `ValueError` that lists the known ones. This module imports nothing of
ndogo, so every layer may keep a registry.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Generic, TypeVar

T = TypeVar("T")

PLUGINS_ENV = "NDOGO_PLUGINS"


class Registry(Generic[T]):
    """Entries of one sort (`what`: "stage", "quantize method", "model kind") by name."""

    def __init__(self, what: str, *, modules: Mapping[str, str] | None = None, packages: Sequence[str] = (),
                 aliases: Mapping[str, str] | None = None, plugins: bool = False,
                 on_import: Callable[[str, ModuleType], T | None] | None = None) -> None:
        self.what = what
        self.modules = dict(modules or {})
        self.packages = tuple(packages)
        self.aliases = dict(aliases or {})
        self.plugins = plugins
        self.on_import = on_import
        self._entries: dict[str, T] = {}
        self._imported: set[str] = set()

    # ------------------------------------------------------------ registering

    def add(self, name: str, entry: T) -> T:
        """Register `entry` under `name` (a later entry of the same name replaces it)."""
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`: `@REGISTRY.register("name")`."""
        return lambda entry: self.add(name, entry)

    # ------------------------------------------------------------ looking up

    def canonical(self, name: str) -> str:
        """The name an alias stands for (`quantise` -> `quantize`), else the name itself."""
        if not isinstance(name, str):
            return name  # (a number where a name belongs: unknown, said so by get)
        name = name.strip()
        return self.aliases.get(name, name)

    def discover(self) -> None:
        """Import every module of `packages` (and of $NDOGO_PLUGINS) not imported yet."""
        names: list[str] = []
        for package_name in self.packages:
            package = importlib.import_module(package_name)
            # modules starting with "_" are a package's helpers, not entries
            names += [f"{package_name}.{m.name}" for m in pkgutil.iter_modules(package.__path__)
                      if not m.name.startswith("_")]
        if self.plugins:
            names += [n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip()]
        for module in names:
            if module not in self._imported:
                self._imported.add(module)
                importlib.import_module(module)

    def _load(self, name: str) -> None:
        """Import what registers `name`: its module in `modules`, else every module of `packages`."""
        if name in self.modules:
            module = importlib.import_module(self.modules[name])
            if self.on_import is not None and name not in self._entries:
                entry = self.on_import(name, module)
                if entry is not None:
                    self._entries[name] = entry
        if name not in self._entries:
            self.discover()

    def find(self, name: str) -> T | None:
        """The entry called `name` (or its alias), importing what registers it; None when there is none."""
        name = self.canonical(name)
        if name not in self._entries:
            self._load(name)
        return self._entries.get(name)

    def get(self, name: str) -> T:
        """The entry called `name`; an unknown name is a ValueError listing the known ones."""
        entry = self.find(name)
        if entry is None:
            raise ValueError(f"unknown {self.what} {name!r}; choose one of {', '.join(self.names())}")
        return entry

    def names(self) -> list[str]:
        """Every name: those registered (in registration order), then those of `modules` not imported yet."""
        self.discover()
        return [*self._entries, *(n for n in self.modules if n not in self._entries)]

    def known(self, name: str) -> bool:
        """Whether `name` (or its alias) is registered or listed in `modules`, importing nothing."""
        name = self.canonical(name)
        return name in self._entries or name in self.modules

    def loaded(self) -> dict[str, T]:
        """The entries registered so far (nothing imported to find more)."""
        return dict(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.known(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
