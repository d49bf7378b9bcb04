"""A benchmark's name lives in its own folder: the code of evaluation/, methods/, workflows/,
leaderboard/ and common/ asks the benchmark object (evaluation/benchmarks/<family>/) instead of
naming one. Identifiers and string literals are checked; comments and docstrings are prose and
may cite a benchmark as the origin of a recipe or an example.

The registry module (evaluation/benchmarks/__init__.py) names every benchmark once, by design.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from evaluation import benchmarks

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("evaluation", "methods", "workflows", "leaderboard", "common")
REGISTRY = "evaluation/benchmarks/__init__.py"
FAMILY_FOLDER = "evaluation/benchmarks/{family}/"

# Files another refactor of issue #22 owns that still name a benchmark; theirs to fix. The
# integrator empties this after merging it (the test then checks those files too). Of that
# refactor's other files (leaderboard/headline.py, validate.py; evaluation/harness.py for the harness
# refactor) none names a benchmark in code today, so they are checked already.
PENDING_ELSEWHERE: dict[str, str] = {}  # path -> why its names are still allowed (empty: none is)

# Words that contain a benchmark's name but name something else: a published model, its provenance
# note, a method recipe called after the benchmark it was released with, a paper config's file
# name in a help example. (path, word) pairs, the word as written.
EXTERNAL_NAMES = {
    ("evaluation/models.py", "tofu-ft-phi-1.5"): "model preset named after locuslab/tofu_ft_phi-1.5",
    ("evaluation/models.py", "locuslab/tofu_ft_phi-1.5"): "Hugging Face model id",
    ("evaluation/models.py", "tofu-ft-llama2-7b"): "model preset named after locuslab/tofu_ft_llama2-7b",
    ("evaluation/models.py", "locuslab/tofu_ft_llama2-7b"): "Hugging Face model id",
    ("methods/memory_plan.py", "locuslab/tofu_ft_phi-1.5"): "Hugging Face model id",
    ("methods/memory_plan.py", "locuslab/tofu_ft_llama2-7b"): "Hugging Face model id",
    ("evaluation/models.py", "TOFU-legacy"): "model preset note: the paper release a model comes from",
    ("evaluation/models.py", "RWKU"): "model preset note: the paper release a model comes from",
    ("evaluation/models.py", "WMDP"): "model preset note: the paper release a model comes from",
    ("methods/objectives/rmu.py", "wmdp-zephyr"): "RMU preset after the official WMDP-RMU recipe (configs use it)",
    ("leaderboard/cli.py", "config/paper/ou_tofu.yaml"): "paper config file name in a help example",
    ("leaderboard/cli.py", "config/paper/sago_wmdp.yaml"): "paper config file name in a help example",
    ("leaderboard/cli.py", "config/paper/gru_tofu.yaml"): "paper config file name in a help example",
}


def families() -> list[str]:
    return sorted({bench.family for bench in benchmarks.BENCHMARKS.values()}
                  | {bench.name for bench in benchmarks.BENCHMARKS.values()})


def name_pattern(names) -> re.Pattern:
    """A benchmark name not glued to other letters: `tofu_eval`, `MUSE`, "wmdp-tiny" match, `amuse` not."""
    alternatives = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z])(?:{alternatives})(?![A-Za-z])", re.IGNORECASE)


def docstring_nodes(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def code_words(source: str):
    """(line, text) of every identifier and string literal of `source`, docstrings left out."""
    tree = ast.parse(source)
    prose = docstring_nodes(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Name):
            yield line, node.id
        elif isinstance(node, ast.Attribute):
            yield line, node.attr
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield line, node.name
        elif isinstance(node, (ast.arg, ast.keyword)) and node.arg:
            yield line, node.arg
        elif isinstance(node, ast.alias):
            yield line, node.asname or node.name
            yield line, node.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield line, node.module
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            yield from ((line, name) for name in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            yield line, node.value


def allowed_in(path: str, word: str) -> bool:
    return path == REGISTRY or (path, word) in EXTERNAL_NAMES


def occurrences(root: Path, pattern: re.Pattern, family_of: dict[str, str], skip=PENDING_ELSEWHERE):
    """`file:line: word` for every benchmark name outside its own folder."""
    hits = []
    for top in SCANNED:
        for file in sorted((root / top).rglob("*.py")):
            path = file.relative_to(root).as_posix()
            if path in skip:
                continue
            for line, text in sorted(set(code_words(file.read_text(encoding="utf-8")))):
                for match in pattern.finditer(text):
                    family = family_of[match.group(0).lower()]
                    if path.startswith(FAMILY_FOLDER.format(family=family)):
                        continue
                    word = _word_around(text, match)
                    if not allowed_in(path, word):
                        hits.append(f"{path}:{line}: {word}")
    return sorted(set(hits))


def _word_around(text: str, match: re.Match) -> str:
    """The whitespace-delimited word holding the match (what a reader greps for)."""
    before = re.search(r"\S*$", text[:match.start()]).group(0)
    after = re.match(r"\S*", text[match.end():]).group(0)
    return (before + match.group(0) + after).strip("`'\"(),;:")


def registry_families() -> dict[str, str]:
    out = {}
    for bench in benchmarks.BENCHMARKS.values():
        out[bench.family.lower()] = bench.family
        out[bench.name.lower()] = bench.family
    return out


def test_benchmark_names_stay_in_their_folders():
    family_of = registry_families()
    hits = occurrences(REPO, name_pattern(family_of), family_of)
    assert not hits, ("benchmark names outside evaluation/benchmarks/<family>/ (ask the Benchmark object, "
                      "or move the code into the benchmark's folder):\n" + "\n".join(hits))


def test_the_allow_lists_are_not_stale():
    family_of = registry_families()
    for path in PENDING_ELSEWHERE:
        assert (REPO / path).is_file(), f"{path} is gone: drop it from PENDING_ELSEWHERE"
        others = {other for other in PENDING_ELSEWHERE if other != path}
        assert occurrences(REPO, name_pattern(family_of), family_of, skip=others), \
            f"{path} names no benchmark any more: drop it from PENDING_ELSEWHERE"
    for path, word in EXTERNAL_NAMES:
        assert word in (REPO / path).read_text(encoding="utf-8"), f"{word!r} is no longer in {path}"


@pytest.mark.parametrize("snippet, expected", [
    ('x = benchmarks.get("tofu-tiny")\n', ["x.py:1: tofu-tiny"]),
    ("from evaluation.metrics import muse\n", ["x.py:1: muse"]),
    ("WMDP_PARAMS = 1\n", ["x.py:1: WMDP_PARAMS"]),
    ('"""Docstring citing TOFU."""\n# comment: RWKU\namused = 1\n', []),
])
def test_the_check_finds_names_in_code_not_in_prose(tmp_path, snippet, expected):
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / "x.py").write_text(snippet, encoding="utf-8")
    family_of = registry_families()
    found = occurrences(tmp_path, name_pattern(family_of), family_of)
    assert [hit.removeprefix("evaluation/") for hit in found] == expected
