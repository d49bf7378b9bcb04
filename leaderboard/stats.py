"""Mean and 95% Student-t interval over seeds."""
from __future__ import annotations

import math

from scipy import stats

CONFIDENCE = 0.95


def mean_interval(values: list[float]) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high); the interval is None for a single seed (no spread to estimate)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None, None, None
    n = len(finite)
    mean = math.fsum(finite) / n
    if n == 1:
        return mean, None, None
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df=n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half
