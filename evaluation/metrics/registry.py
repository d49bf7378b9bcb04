"""Any declared metric by name: the union of every benchmark's `MetricInfo` declarations
(evaluation/metrics/declaration.py), for the leaderboard, its validator and plots."""
from __future__ import annotations

from functools import lru_cache

# The declaration and the direction vocabulary live in `declaration`; re-exported for existing imports.
from evaluation.metrics.declaration import (CLOSER_TO_HALF, CLOSER_TO_ZERO, DIRECTIONS, HIGHER, LOWER,  # noqa: F401
                                            NON_NEGATIVE, NON_POSITIVE, PERCENT, PRIVLEAK, UNBOUNDED, UNIT,
                                            MetricInfo)


@lru_cache(maxsize=1)
def _declared() -> dict[str, MetricInfo]:
    """Every registered benchmark's metric declarations; the first benchmark to declare a name wins.
    Read on first use: the benchmarks import this module for `MetricInfo`."""
    from evaluation.benchmarks import BENCHMARKS

    metrics: dict[str, MetricInfo] = {}
    for bench in BENCHMARKS.values():
        for info in bench.metrics:
            metrics.setdefault(info.name, info)
    return metrics


def __getattr__(name: str):
    if name == "METRICS":  # lazily, see _declared
        return _declared()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def direction(name: str) -> str:
    try:
        return _declared()[name].better
    except KeyError:
        raise ValueError(f"no direction recorded for metric {name!r}; add it to its benchmark's metrics") from None


def is_better(name: str, a: float, b: float) -> bool:
    """True when value `a` is strictly better than `b` for metric `name`."""
    better = direction(name)
    if better == HIGHER:
        return a > b
    if better == LOWER:
        return a < b
    target = 0.0 if better == CLOSER_TO_ZERO else 0.5
    return abs(a - target) < abs(b - target)
