"""Metric metadata in one place: which direction is better and which values are possible, for the
leaderboard, its validator and plots."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

HIGHER, LOWER, CLOSER_TO_ZERO, CLOSER_TO_HALF = "higher", "lower", "closer_to_zero", "closer_to_half"
# Value ranges (lo, hi), inclusive, that follow from a metric's definition (metrics.md):
UNBOUNDED = (-math.inf, math.inf)
UNIT = (0.0, 1.0)                  # probabilities, accuracies, ROUGE fractions, AUCs, KS p-values
PERCENT = (0.0, 100.0)             # a fraction x100 (MUSE official); the fraction variants fit too
# PrivLeak = (AUC - AUC_ref) / AUC_ref x 100 (MUSE; OU's 1 - AUC form is the same): -100 when the
# forget set is perfectly member-like (AUC 0); no finite upper end as AUC_ref approaches 0.
PRIVLEAK = (-100.0, math.inf)
NON_POSITIVE = (-math.inf, 0.0)    # mean token log-likelihoods (and those divided by a length)
NON_NEGATIVE = (0.0, math.inf)     # entropies


@dataclass(frozen=True)
class MetricInfo:
    name: str
    better: str  # one of HIGHER, LOWER, CLOSER_TO_ZERO, CLOSER_TO_HALF
    description: str
    bounds: tuple[float, float] = UNBOUNDED  # (lo, hi): the values the definition allows


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
