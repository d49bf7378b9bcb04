"""The package layers (issue #22 D): common ← methods ← evaluation ← workflows, leaderboard.

common is shared by everything and imports none of the suite's packages; methods (the training
engine: objectives, rectifiers, parametrizations, attacks, the loop) imports only common; evaluation
may import methods and common, never the pipeline (workflows) or the leaderboard. Every import
statement counts, also those inside functions (the suite imports heavy modules lazily). Read with
ast, nothing is imported.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "methods", "evaluation", "workflows", "leaderboard")
FORBIDDEN = {
    "common": {"methods", "evaluation", "workflows", "leaderboard"},
    "methods": {"evaluation", "workflows", "leaderboard"},
    "evaluation": {"workflows", "leaderboard"},
}


def imported_packages(source: Path) -> list[tuple[str, int]]:
    """(top-level package of the suite, line) of every absolute import in the file."""
    found = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), filename=str(source))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(name.split(".")[0], node.lineno) for name in names if name.split(".")[0] in PACKAGES]
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_higher_ones(package):
    crossings = [f"{source.relative_to(ROOT)}:{line} imports {target}"
                 for source in sorted((ROOT / package).rglob("*.py"))
                 for target, line in imported_packages(source) if target in FORBIDDEN[package]]
    assert not crossings, "\n".join(crossings)


def test_the_check_sees_function_level_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from evaluation.encoding import encode_corpus\n    import workflows.grid\n")
    assert imported_packages(module) == [("evaluation", 4), ("workflows", 5)]
