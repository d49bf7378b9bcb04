"""The meta-evaluation's numbers, as pure functions of metric values (no files).

Orientation: every metric is read as "knowledge of the forget set" k = distance from the value its
declared direction calls best (`evaluation.metrics.declaration.goodness`): k = v for a lower-is-better
metric, hi - v for a higher-is-better one with a finite upper bound, |v| for closer-to-zero and
|v - 0.5| for closer-to-half. A model that holds the knowledge should have the larger k.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from leaderboard.attacks import relearn_ratio
from evaluation.metrics.declaration import CLOSER_TO_HALF, CLOSER_TO_ZERO, HIGHER, LOWER, goodness

MIN_KNOWLEDGE = 1e-9  # k of an unlearned model below this: nothing left that quantization could reveal


@dataclass(frozen=True)
class Interval:
    value: float | None
    ci_low: float | None
    ci_high: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high}


def knowledge_score(value: float, direction: str) -> float:
    """A score that ranks models by how far they sit from the direction's best value (for AUC)."""
    return -goodness(value, direction)


def knowledge_level(value: float, direction: str, bounds: tuple[float, float]) -> float | None:
    """k >= 0 with 0 = the best (fully forgotten) end, for ratios; None where that end is infinite."""
    low, high = bounds
    if direction == LOWER:
        return value - low if math.isfinite(low) else None
    if direction == HIGHER:
        return high - value if math.isfinite(high) else None
    if direction == CLOSER_TO_ZERO:
        return abs(value)
    if direction == CLOSER_TO_HALF:
        return abs(value - 0.5)
    raise ValueError(f"unknown metric direction {direction!r}")


def faithfulness(holds: Sequence[float], lacks: Sequence[float], direction: str) -> float | None:
    """AUC-ROC of separating the pool that holds the knowledge (P, label 1) from the pool that never
    saw it (N, label 0), scoring each model by `knowledge_score`: 1 = every P model looks less
    forgotten than every N model, 0.5 = no separation, 0 = the metric points the wrong way."""
    if not holds or not lacks:
        return None
    scores = [knowledge_score(v, direction) for v in holds] + [knowledge_score(v, direction) for v in lacks]
    labels = [1] * len(holds) + [0] * len(lacks)
    return float(roc_auc_score(labels, scores))


def quantization_ratio(unlearned: float | None, quantized: float | None) -> float | None:
    """Q = min(k_unlearned / k_quantized, 1) on knowledge levels: 1 when quantization revealed no
    knowledge the unlearned model hid; k_quantized / k_unlearned above 1 lowers it."""
    if unlearned is None or quantized is None:
        return None
    if quantized <= MIN_KNOWLEDGE:
        return 1.0
    return min(unlearned / quantized, 1.0)


def relearning_ratio(retain_gain: float | None, unlearn_gain: float | None) -> float | None:
    """OU's R = min(Δ_retain / Δ_unlearn, 1): leaderboard.attacks.relearn_ratio, kept in [0, 1]."""
    return relearn_ratio(retain_gain, unlearn_gain)


def harmonic_mean(q: float | None, r: float | None) -> float | None:
    """HM of Q and R; 0 when either is 0, None when either is missing."""
    if q is None or r is None:
        return None
    return 0.0 if q <= 0 or r <= 0 else 2 * q * r / (q + r)


def mean_or_none(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return math.fsum(finite) / len(finite) if finite else None


def percentile_interval(samples: Sequence[float], level: float) -> tuple[float | None, float | None]:
    finite = np.asarray([s for s in samples if s is not None and math.isfinite(s)], dtype=float)
    if finite.size == 0:
        return None, None
    tail = (1 - level) / 2 * 100
    return float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail))


def bootstrap_faithfulness(holds: Sequence[float], lacks: Sequence[float], direction: str, *, samples: int,
                           level: float, seed: int) -> Interval:
    """AUC with a percentile interval over models: P and N each resampled with replacement."""
    value = faithfulness(holds, lacks, direction)
    if value is None:
        return Interval(None, None, None)
    rng = np.random.default_rng(seed)
    holds, lacks = np.asarray(holds, dtype=float), np.asarray(lacks, dtype=float)
    draws = [faithfulness(rng.choice(holds, holds.size).tolist(), rng.choice(lacks, lacks.size).tolist(), direction)
             for _ in range(samples)]
    low, high = percentile_interval(draws, level)
    return Interval(value, low, high)


def bootstrap_mean(values: Sequence[float | None], *, samples: int, level: float, seed: int) -> Interval:
    """Mean over models with a percentile interval, models resampled with replacement."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return Interval(None, None, None)
    rng = np.random.default_rng(seed)
    draws = finite[rng.integers(0, finite.size, size=(samples, finite.size))].mean(axis=1)
    low, high = percentile_interval(draws.tolist(), level)
    return Interval(float(finite.mean()), low, high)


def bootstrap_statistic(rows: Sequence[tuple], statistic: Callable[[Sequence[tuple]], float | None], *,
                        samples: int, level: float, seed: int) -> Interval:
    """Any statistic of per-model rows (e.g. HM of the mean Q and mean R), models resampled."""
    value = statistic(rows)
    if value is None:
        return Interval(None, None, None)
    rng = np.random.default_rng(seed)
    draws = [statistic([rows[i] for i in rng.integers(0, len(rows), size=len(rows))]) for _ in range(samples)]
    low, high = percentile_interval(draws, level)
    return Interval(value, low, high)
