"""The leaderboard reads metrics and row flags from the benchmarks' declarations: no benchmark's name
in its code, the flags a benchmark declares (`board_flags`) and nothing else."""
from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from evaluation import benchmarks
from evaluation.benchmarks.base import RowFlag
from leaderboard import aggregate
from tests.leaderboard import lb_synthetic as syn

LEADERBOARD = Path(aggregate.__file__).parent
FLOOR = 2 / math.comb(400, 200)  # a KS p-value at complete separation (n = 200)


def _flags(document) -> list[str]:
    return aggregate._seed_flags([document], None)


def test_leaderboard_code_names_no_benchmark():
    """A benchmark-specific rule belongs in the benchmark's declaration, not in `leaderboard/`."""
    families = {bench.family for bench in benchmarks.BENCHMARKS.values()}
    named = set(benchmarks.BENCHMARKS) | families
    found = []
    for path in sorted(LEADERBOARD.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in named:
                found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert not found


def test_the_ks_floor_flag_is_the_one_tofu_declares():
    flags = benchmarks.get("tofu-tiny").board_flags
    assert [(f.name, f.metric) for f in flags] == [("fq_at_ks_floor", "forget_quality")]
    assert "fq_at_ks_floor" in _flags(syn.document(metrics={"forget_quality": FLOOR, "model_utility": 0.5}))
    assert "fq_at_ks_floor" not in _flags(syn.document(metrics={"forget_quality": 0.3, "model_utility": 0.5}))
    # the same value under a benchmark that declares no such flag is no reason to set it
    muse = syn.document(benchmark="muse-tiny", split="news", metrics={"forget_quality": FLOOR})
    assert _flags(muse) == []


def test_a_benchmark_that_declares_a_flag_gets_it(monkeypatch):
    bench = benchmarks.get("muse-tiny")
    monkeypatch.setattr(bench, "board_flags", (RowFlag("kf_at_ks_floor", "knowmem_forget"),))
    assert _flags(syn.document(benchmark="muse-tiny", split="news", metrics={"knowmem_forget": 0.0})) \
        == ["kf_at_ks_floor"]
    monkeypatch.setattr(bench, "board_flags", (RowFlag("odd", "knowmem_forget", test="no_such_test"),))
    with pytest.raises(aggregate.AggregationError, match="unknown test 'no_such_test'"):
        _flags(syn.document(benchmark="muse-tiny", split="news", metrics={"knowmem_forget": 0.0}))
