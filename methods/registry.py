"""Name → class registries for the four parts of an unlearning step.

Adding a method is adding one file: every module in methods/{objectives,rectifiers,
parametrizations,analysis}/ is imported (pkgutil) the first time a registry is asked for a name.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, TypeVar

T = TypeVar("T")


class Registry:
    def __init__(self, kind: str, package: str):
        self.kind = kind
        self.package = package
        self._entries: dict[str, type] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(cls: T) -> T:
            if name in self._entries and self._entries[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is registered twice "
                                 f"({self._entries[name].__module__} and {cls.__module__})")
            self._entries[name] = cls
            cls.name = name
            return cls
        return decorate

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self.package}.{module.name}")

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._entries)

    def get(self, name: str) -> type:
        self._discover()
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        self._discover()
        return name in self._entries


OBJECTIVES = Registry("objective", "methods.objectives")
RECTIFIERS = Registry("rectifier", "methods.rectifiers")
PARAMETRIZATIONS = Registry("parametrization", "methods.parametrizations")
ANALYZERS = Registry("analyzer", "methods.analysis")


def parse_args(owner: str, given: dict, defaults: dict) -> dict:
    """Merge `given` over `defaults`; an unknown key is an error that lists the accepted ones."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"{owner} does not take argument(s) {unknown}; "
                         f"accepted: {sorted(defaults) or 'none'}")
    return {**defaults, **given}
