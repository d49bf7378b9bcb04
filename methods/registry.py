"""Name → class registries for the four parts of an unlearning step.

Adding a method is adding one file: a module in methods/{objectives,rectifiers,parametrizations,
analysis}/ that decorates its class with `@OBJECTIVES.register("name")` (or RECTIFIERS, ...).

Names are known without importing anything heavy: the registry reads the package's module files
as source (`ast`, never executed) and collects the string literal of every `<REGISTRY>.register(...)`
call, so `names()`, `in` and the "unknown name" error cost milliseconds and leave torch unimported
(config checks, `ubench --help`, Snakemake's planning). `get(name)` imports only the one module that
declares `name`; that import registers the class as the decorator runs. A register name must
therefore be a string literal (checked when the package is read).
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


class Registry:
    def __init__(self, kind: str, package: str, symbol: str):
        self.kind = kind
        self.package = package
        self.symbol = symbol  # the module-level name of this registry (`OBJECTIVES`): what the parser looks for
        self._entries: dict[str, type] = {}
        self._declared: dict[str, str] | None = None  # name -> module that registers it

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(cls: T) -> T:
            if name in self._entries and self._entries[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is registered twice "
                                 f"({self._entries[name].__module__} and {cls.__module__})")
            self._entries[name] = cls
            cls.name = name
            return cls
        return decorate

    def declared(self) -> dict[str, str]:
        """name → module path, read from the package's source files without importing them."""
        if self._declared is None:
            self._declared = declared_names(self.package, self.symbol, self.kind)
        return self._declared

    def names(self) -> list[str]:
        return sorted(self.declared())

    def get(self, name: str) -> type:
        declared = self.declared()
        if name not in declared:
            raise KeyError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        if name not in self._entries:
            importlib.import_module(declared[name])
        if name not in self._entries:  # the parser and the decorator disagree: a bug in this file
            raise RuntimeError(f"{declared[name]} declares {self.kind} {name!r} but importing it registered "
                               f"{sorted(n for n, c in self._entries.items() if c.__module__ == declared[name])}")
        return self._entries[name]

    def load_all(self) -> dict[str, type]:
        """Import every declaring module (tests, listings that need the classes themselves)."""
        return {name: self.get(name) for name in self.names()}

    def __contains__(self, name: str) -> bool:
        return name in self.declared()

    def required_arguments(self, name: str) -> tuple[str, ...]:
        """The `required_args = ("...", ...)` literal in the body of the class registered as `name`,
        read from source like the names (no import): arguments without a usable default, which
        config checks must try even when a run gives no arguments."""
        return self.class_literal(name, "required_args")

    def summary(self, name: str) -> str:
        """First line of the docstring of the class registered as `name` (else of its module), read
        from source without importing it: what `ubench methods list` prints."""
        module = self.declared().get(name)
        if module is None:
            return ""
        source = dict(package_modules(self.package)).get(module)
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and _registers(node, name, self.symbol) and ast.get_docstring(node):
                return _first_line(ast.get_docstring(node))
        return _first_line(ast.get_docstring(tree) or "")

    def class_constant(self, name: str, attribute: str, default):
        """The constant `attribute = <literal>` (bool, number, string) in the body of the class
        registered as `name`, read from source without importing it; `default` when the class does
        not set it (the base class's value, which the caller names)."""
        for item in self._registered_class_body(name):
            if (isinstance(item, ast.Assign) and any(isinstance(t, ast.Name) and t.id == attribute for t in item.targets)
                    and isinstance(item.value, ast.Constant)):
                return item.value.value
        return default

    def _registered_class_body(self, name: str) -> list:
        module = self.declared().get(name)
        if module is None:
            return []
        source = dict(package_modules(self.package)).get(module)
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        return next((node.body for node in ast.walk(tree)
                     if isinstance(node, ast.ClassDef) and _registers(node, name, self.symbol)), [])

    def class_literal(self, name: str, attribute: str) -> tuple:
        """The tuple/list literal `attribute = (...)` in the body of the class registered as `name`
        (strings or numbers), read from source without importing it; () when absent."""
        for item in self._registered_class_body(name):
            if (isinstance(item, ast.Assign) and any(isinstance(t, ast.Name) and t.id == attribute for t in item.targets)
                    and isinstance(item.value, (ast.Tuple, ast.List))):
                return tuple(e.value for e in item.value.elts if isinstance(e, ast.Constant))
        return ()


def _registers(node: ast.ClassDef, name: str, symbol: str) -> bool:
    return any(isinstance(d, ast.Call) and any(found == name for found, _ in registered_literals(d, symbol))
               for d in node.decorator_list)


def _first_line(docstring: str) -> str:
    """The first sentence of a docstring's first paragraph, on one line."""
    paragraph = " ".join(docstring.strip().split("\n\n")[0].split())
    sentence = re.split(r"(?<=[.])\s(?=[A-Z])", paragraph, maxsplit=1)[0]
    return sentence


def package_modules(package: str) -> list[tuple[str, Path]]:
    """(module name, source file) of every plain module directly in `package`, as pkgutil lists them.
    Finding the package imports only its parents' `__init__` files, which stay light."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{package} is not a package")
    found = []
    for info in pkgutil.iter_modules(spec.submodule_search_locations):
        if info.ispkg:
            continue
        source = Path(info.module_finder.path) / f"{info.name}.py"
        if source.is_file():
            found.append((f"{package}.{info.name}", source))
    return found


def registered_literals(tree: ast.AST, symbol: str) -> list[tuple[str | None, int]]:
    """(name, line) of every `symbol.register(...)` / `x.symbol.register(...)` call; name None when
    the argument is not a string literal."""
    calls = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "register"):
            continue
        owner = node.func.value
        owner_name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else None
        if owner_name != symbol:
            continue
        first = node.args[0] if node.args else None
        literal = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
        calls.append((literal, node.lineno))
    return calls


def declared_names(package: str, symbol: str, kind: str) -> dict[str, str]:
    declared: dict[str, str] = {}
    for module, source in package_modules(package):
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        for name, line in registered_literals(tree, symbol):
            if name is None:
                raise ValueError(f"{source}:{line}: {symbol}.register(...) needs a string literal name, so the "
                                 f"{kind} can be listed without importing its module")
            if name in declared and declared[name] != module:
                raise ValueError(f"{kind} {name!r} is registered twice ({declared[name]} and {module})")
            declared[name] = module
    return declared


OBJECTIVES = Registry("objective", "methods.objectives", "OBJECTIVES")
RECTIFIERS = Registry("rectifier", "methods.rectifiers", "RECTIFIERS")
PARAMETRIZATIONS = Registry("parametrization", "methods.parametrizations", "PARAMETRIZATIONS")
ANALYZERS = Registry("analyzer", "methods.analysis", "ANALYZERS")
# attacks on an unlearned model (quantize, relearn, prompt): not a part of the unlearning step,
# but listed the same way so a config's `attacks:` are checked without importing torch
ATTACKS = Registry("attack", "methods.attacks", "ATTACKS")
REGISTRIES = (OBJECTIVES, RECTIFIERS, PARAMETRIZATIONS, ANALYZERS, ATTACKS)


def parse_args(owner: str, given: dict, defaults: dict) -> dict:
    """Merge `given` over `defaults`; an unknown key is an error that lists the accepted ones."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"{owner} does not take argument(s) {unknown}; "
                         f"accepted: {sorted(defaults) or 'none'}")
    return {**defaults, **given}
