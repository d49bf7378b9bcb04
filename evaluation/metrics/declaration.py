"""What a metric is, declared once: its name, which way is better, the values its definition allows
and how it is computed. A benchmark lists its metrics as `MetricInfo`s (`Benchmark.metrics`).

A metric computable from the per-item table carries that computation as `from_items`: the evaluator
writes its value by calling it on every item in order (`resampling.full_value`), and the
leaderboard's per-item bootstrap calls the same function on resampled items
(`Benchmark.metric_from_items`), so the reported number and its bootstrap are one code path. A
metric the table cannot give (an lm-eval category group; MUSE privleak, whose reference AUC the
evaluator picks) has no function and says where it is computed (`computed_by`). The leaderboard's
validator checks values against `bounds` and the board ranks by `better`.

Cheap to import (no numpy, no torch): the leaderboard and the grid planner read it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

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


# from_items(table, draw, *, split, evaluator, references) -> (samples,) float array. `table` is one
# evaluation's per-item table (per_item.parquet); `draw(item_set, n)` gives (samples, n) positions
# into the n items of an item set in the benchmark's item order (the identity draw, one sample of
# every item in order, gives the reported value); `split` the unlearning split, `evaluator` the
# evaluator block of metrics.json, `references` the per-item tables of reference roles ("retain",
# "target") where one exists. Raises ValueError when the table cannot give the metric.
FromItems = Callable[..., Any]


@dataclass(frozen=True)
class MetricInfo:
    name: str
    better: str  # one of DIRECTIONS
    description: str
    bounds: tuple[float, float] = UNBOUNDED  # (lo, hi): the values the definition allows
    from_items: Optional[FromItems] = None   # the computation over the per-item table (see FromItems)
    # where a metric without `from_items` is computed, in a few words (a test asks every benchmark's
    # metrics for one of the two)
    computed_by: str = ""

    def __post_init__(self):
        if self.better not in DIRECTIONS:
            raise ValueError(f"metric {self.name!r}: direction {self.better!r} is not one of {', '.join(DIRECTIONS)}")
        low, high = self.bounds
        if not low <= high:
            raise ValueError(f"metric {self.name!r}: bounds {self.bounds} have lo > hi")
        if self.from_items is not None and self.computed_by:
            raise ValueError(f"metric {self.name!r}: declare `from_items` (computed from the per-item table) "
                             "or `computed_by` (where it is computed instead), not both")

    @property
    def resampled(self) -> bool:
        """Whether the leaderboard's per-item bootstrap can recompute it: it has `from_items`."""
        return self.from_items is not None


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

