"""Why a row may not be ranked next to the others: each reason becomes a flag, never a silent drop."""
from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache

KS_FLOOR_MAX_N = 5000


def log_ks_floor(n: int) -> float:
    """log of 2 / C(2n, n): the smallest two-sample KS p-value with n items per side."""
    return math.log(2.0) - (math.lgamma(2 * n + 1) - 2 * math.lgamma(n + 1))


@lru_cache(maxsize=1)
def _log_floors() -> tuple[float, ...]:
    return tuple(log_ks_floor(n) for n in range(1, KS_FLOOR_MAX_N + 1))


def at_ks_floor(forget_quality: float | None) -> bool:
    """True when FQ equals the complete-separation floor for some equal sample size (or underflows).

    At the floor every unlearned model that separates the sets completely gets the same number,
    so the value carries no ranking information (published.md §1.2, 1.94e-119 / 1.06e-239).
    """
    if forget_quality is None:
        return False
    if forget_quality <= 0.0:
        return True
    if forget_quality > 0.5:
        return False
    log_fq = math.log(forget_quality)
    # 0.5% relative tolerance: matches values printed to 3 digits; neighbouring floors differ ~4x.
    return any(abs(log_fq - floor) <= 5e-3 for floor in _log_floors())


def main_variant(variants: list[str], configured: str | None) -> str | None:
    """The configured main evaluator variant, else the most common one (ties: alphabetical)."""
    if configured:
        return configured
    if not variants:
        return None
    counts = Counter(variants)
    return sorted(counts, key=lambda v: (-counts[v], v))[0]
