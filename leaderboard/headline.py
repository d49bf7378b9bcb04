"""Which two numbers a benchmark is judged on, and which way each metric is better.

Both come from the benchmark interface (`evaluation/benchmarks/base.py`: each benchmark's
`headline` and `metrics`), so a new benchmark brings its own axes and directions; this module only
maps them to the leaderboard's words and compares values.
"""
from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

HIGHER, LOWER, ZERO, HALF = "higher", "lower", "zero", "half"  # zero/half: closer to 0 / 0.5 is better
_FROM_EVALUATION = {"higher": HIGHER, "lower": LOWER, "closer_to_zero": ZERO, "closer_to_half": HALF}


def _benchmarks():
    """The evaluation package's benchmark registry (None when it is not importable here)."""
    try:
        return importlib.import_module("evaluation.benchmarks")
    except ImportError:
        return None


@lru_cache(maxsize=1)
def headlines() -> dict[str, Any]:
    """Family → the benchmark interface's Headline (forget axis, utility axis, main variant)."""
    module = _benchmarks()
    if module is None:
        return {}
    found: dict[str, Any] = {}
    for bench in module.BENCHMARKS.values():
        found.setdefault(bench.family, bench.headline)
    return found


def family(benchmark: str) -> str:
    """`tofu-tiny` -> `tofu` (the registry's family); unknown benchmarks are their own family."""
    module = _benchmarks()
    if module is not None and benchmark in module.BENCHMARKS:
        return module.BENCHMARKS[benchmark].family
    for name in headlines():
        if benchmark == name or benchmark.startswith(name + "-") or benchmark.startswith(name + "_"):
            return name
    return benchmark


def headline(benchmark: str):
    return headlines().get(family(benchmark))


@lru_cache(maxsize=1)
def _directions() -> dict[str, str]:
    """Metric name → direction, from evaluation.metrics.registry and every benchmark's metrics."""
    found: dict[str, str] = {}
    try:
        registry = importlib.import_module("evaluation.metrics.registry")
        infos = list(getattr(registry, "METRICS", {}).values())
    except ImportError:
        infos = []
    module = _benchmarks()
    if module is not None:
        infos += [info for bench in module.BENCHMARKS.values() for info in bench.metrics]
    for info in infos:
        if info.better in _FROM_EVALUATION:
            found[info.name] = _FROM_EVALUATION[info.better]
    return found


def metric_direction(metric: str) -> str | None:
    return _directions().get(metric)


def known_metrics() -> set[str]:
    return set(_directions())


def pick(candidates: tuple[str, ...], available: set[str]) -> str | None:
    return next((name for name in candidates if name in available), None)


def goodness(value: float, direction: str) -> float:
    """Map a metric value to "bigger is better" so Pareto dominance is one comparison."""
    if direction == HIGHER:
        return value
    if direction == LOWER:
        return -value
    if direction == ZERO:
        return -abs(value)
    if direction == HALF:
        return -abs(value - 0.5)
    raise ValueError(f"unknown metric direction {direction!r}: use higher, lower, zero or half")
