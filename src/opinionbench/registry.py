"""The one plug-in idiom of every seam: a named `Registry` filled by a `@registry.register(name)` decorator.

Why one idiom: backends, elicitation methods, steerings, correction backends, dataset
importers and baselines are all "pick an implementation by the name written in params.yaml".
Config validation and the CLI read the valid names from the same registry, so adding a
plug-in is one module with a decorated class or function, plus one line naming that module
in its package's registry (`builtins`), which lets `names()` answer without importing heavy
modules (torch) and lets `get()` import only the module that is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from opinionbench.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> plug-in for one seam (`kind` names the seam in error messages)."""

    def __init__(self, kind: str, builtins: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self._modules: dict[str, str] = dict(builtins or {})
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: make the decorated class or function selectable as `name`."""

        def add(obj: T) -> T:
            self._items[name] = obj
            return obj

        return add

    def names(self) -> tuple[str, ...]:
        """Every selectable name, built-in or registered at run time, without importing anything."""
        return tuple(dict.fromkeys([*self._modules, *self._items]))

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._modules

    def get(self, name: str) -> T:
        if name not in self._items and name in self._modules:
            importlib.import_module(self._modules[name])  # its decorator registers it
        if name not in self._items:
            raise ConfigError(f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})")
        return self._items[name]

    def check(self, name: str) -> str:
        """Pydantic-friendly validation of a name: returns it, or raises ValueError listing the known ones."""
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})")
        return name
