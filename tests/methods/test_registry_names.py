"""Registries read method names from source (no import) and agree with what importing registers."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from methods import registry
from methods.registry import REGISTRIES, Registry


@pytest.mark.parametrize("table", REGISTRIES, ids=lambda t: t.kind)
def test_names_read_from_source_equal_the_names_importing_registers(table):
    declared = table.names()
    loaded = table.load_all()
    assert sorted(loaded) == declared == sorted(table._entries)
    assert all(cls.name == name for name, cls in loaded.items())


@pytest.mark.parametrize("table", REGISTRIES, ids=lambda t: t.kind)
def test_every_method_constructs_from_its_own_defaults(table):
    # the config check builds only methods the config gives arguments to (or that declare required
    # arguments), on the strength of this; required_args is read from source, so it must match the class
    for name, cls in table.load_all().items():
        required = tuple(getattr(cls, "required_args", ()))
        assert table.required_arguments(name) == required, name
        if not required:
            cls()
            continue
        with pytest.raises(ValueError, match=required[0]):
            cls()


def test_get_imports_only_the_declaring_module():
    code = textwrap.dedent("""
        import json, sys
        from methods.registry import RECTIFIERS
        names = RECTIFIERS.names()
        before = [m for m in ("torch", "methods.rectifiers.sago") if m in sys.modules]
        RECTIFIERS.get("pcgrad")
        print(json.dumps({"before": before, "names": names, "sago": "methods.rectifiers.sago" in sys.modules,
                          "pcgrad": "methods.rectifiers.pcgrad" in sys.modules}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(registry.__file__).parents[1])
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["before"] == [] and "sago" in seen["names"]
    assert seen["pcgrad"] and not seen["sago"]


def _package(tmp_path, monkeypatch, files: dict[str, str]) -> str:
    package = tmp_path / "fake_methods"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, text in files.items():
        (package / f"{name}.py").write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "fake_methods"


def test_a_computed_register_name_is_refused_naming_the_file_and_line(tmp_path, monkeypatch):
    package = _package(tmp_path, monkeypatch, {"good": """
        from somewhere import THINGS
        @THINGS.register("one")
        class One: ...
        """, "bad": """
        from somewhere import THINGS
        NAME = "two"
        @THINGS.register(NAME)
        class Two: ...
        """})
    with pytest.raises(ValueError, match=r"bad\.py:4: THINGS\.register\(\.\.\.\) needs a string literal"):
        Registry("thing", package, "THINGS").names()


def test_source_declarations_are_found_in_decorators_and_plain_calls(tmp_path, monkeypatch):
    package = _package(tmp_path, monkeypatch, {
        "a": "@registry.THINGS.register('x')\nclass A: ...\n",
        "b": "THINGS.register('y')(object)\nOTHER.register('not-mine')\n",
    })
    table = Registry("thing", package, "THINGS")
    assert table.names() == ["x", "y"] and "x" in table and "not-mine" not in table
    with pytest.raises(KeyError, match="unknown thing 'z'; available: x, y"):
        table.get("z")
    (tmp_path / package / "c.py").write_text("THINGS.register('x')(object)\n")
    with pytest.raises(ValueError, match=r"thing 'x' is registered twice \(fake_methods\.a and fake_methods\.c\)"):
        Registry("thing", package, "THINGS").names()
