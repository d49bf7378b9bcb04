"""The benchmark registry: one line per benchmark. What a benchmark is: `evaluation/benchmarks/base.py`.

Importing this module must stay cheap (no torch): the grid planner and Snakemake read it.
"""
from __future__ import annotations

from evaluation.benchmarks.base import Benchmark, Corpus, EvalContext, EvalOutput, Headline
from evaluation.benchmarks.muse import MUSE, MUSE_TINY
from evaluation.benchmarks.rwku import RWKU, RWKU_TINY
from evaluation.benchmarks.tofu import TOFU, TOFU_TINY
from evaluation.benchmarks.wmdp import WMDP, WMDP_TINY

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    TOFU,
    TOFU_TINY,
    MUSE,
    MUSE_TINY,
    WMDP,
    WMDP_TINY,
    RWKU,
    RWKU_TINY,
)}
DEFAULT_FINETUNE = TOFU_TINY.name  # what `ubench finetune` trains on without --benchmark


def get(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; available: {', '.join(sorted(BENCHMARKS))}") from None


def names() -> list[str]:
    return sorted(BENCHMARKS)


def by_family(family: str) -> list[Benchmark]:
    return [b for b in BENCHMARKS.values() if b.family == family]


__all__ = ["BENCHMARKS", "DEFAULT_FINETUNE", "Benchmark", "Corpus", "EvalContext", "EvalOutput", "Headline", "by_family",
           "get", "names"]
