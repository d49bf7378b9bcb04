"""Which two numbers a benchmark is judged on, and which way each metric is better.

Both come from the benchmark interface (`evaluation/benchmarks/base.py`: each benchmark's
`headline` and `metrics`), so a new benchmark brings its own axes and directions; the directions
are the declaration's own words (`evaluation/metrics/declaration.py`), written unchanged into the
board's outputs.
"""
from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

from evaluation.metrics.declaration import CLOSER_TO_HALF, CLOSER_TO_ZERO, HIGHER, LOWER, goodness  # noqa: F401


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


def definition(benchmark: str):
    """The benchmark interface object of `benchmark` (None for one this checkout does not define)."""
    module = _benchmarks()
    return None if module is None else module.BENCHMARKS.get(benchmark)


def family_definition(benchmark: str):
    """The definition whose declarations a row of `benchmark` follows: its own, else the first of
    its family (the one `headline` takes the axes from)."""
    found = definition(benchmark)
    module = _benchmarks()
    if found is not None or module is None:
        return found
    name = family(benchmark)
    return next((bench for bench in module.BENCHMARKS.values() if bench.family == name), None)


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
        found[info.name] = info.better
    return found


def metric_direction(metric: str) -> str | None:
    return _directions().get(metric)


def known_metrics() -> set[str]:
    return set(_directions())


def pick(candidates: tuple[str, ...], available: set[str]) -> str | None:
    return next((name for name in candidates if name in available), None)

