"""What a metric is, declared once: its name, which way is better, the values its definition allows
and whether the leaderboard's per-item bootstrap can recompute it. A benchmark lists its metrics as
`MetricInfo`s (`Benchmark.metrics`); the evaluator writes those names, the leaderboard's validator
checks the values against `bounds`, the board ranks by `better` and the bootstrap resamples only the
metrics marked `resampled`.

Cheap to import (no numpy, no torch): the leaderboard and the grid planner read it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# Which value is better. These strings are also what the leaderboard writes (page data, tables), so
# evaluation and leaderboard share this one vocabulary.
HIGHER, LOWER, CLOSER_TO_ZERO, CLOSER_TO_HALF = "higher", "lower", "zero", "half"
DIRECTIONS = (HIGHER, LOWER, CLOSER_TO_ZERO, CLOSER_TO_HALF)

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
    better: str  # one of DIRECTIONS
    description: str
    bounds: tuple[float, float] = UNBOUNDED  # (lo, hi): the values the definition allows
    # True when the benchmark's `metric_from_items` recomputes this metric from item samples of the
    # per-item table (the leaderboard's paired bootstrap); tests hold the two to agree
    resampled: bool = False

    def __post_init__(self):
        if self.better not in DIRECTIONS:
            raise ValueError(f"metric {self.name!r}: direction {self.better!r} is not one of {', '.join(DIRECTIONS)}")
        low, high = self.bounds
        if not low <= high:
            raise ValueError(f"metric {self.name!r}: bounds {self.bounds} have lo > hi")


def goodness(value: float, direction: str) -> float:
    """A metric value mapped to "bigger is better", so comparing two values is one comparison."""
    if direction == HIGHER:
        return value
    if direction == LOWER:
        return -value
    if direction == CLOSER_TO_ZERO:
        return -abs(value)
    if direction == CLOSER_TO_HALF:
        return -abs(value - 0.5)
    raise ValueError(f"unknown metric direction {direction!r}: use {', '.join(DIRECTIONS)}")

