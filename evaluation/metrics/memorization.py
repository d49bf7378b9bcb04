"""Extraction strength and exact memorisation (OU, metrics.md §1.4), from teacher-forced argmax
hits over the answer tokens: hits[t] = [argmax_v p(v | y_<t) == y_t]."""
from __future__ import annotations

import numpy as np


def extraction_strength(hits, ou_quirk: bool = False) -> float:
    """ES = 1 − k*/|y| with k* the smallest k such that the argmax matches y on every token from k on.

    With no matching suffix, k* = |y| and ES = 0. OU's loop stops at k = |y| − 1 instead and returns
    1/|y| there (its quirk); `ou_quirk=True` reproduces it for comparison with OU numbers.
    """
    hits = np.asarray(hits, dtype=bool)
    n = len(hits)
    if n == 0:
        return 0.0
    misses = np.flatnonzero(~hits)
    k_star = 0 if len(misses) == 0 else int(misses[-1]) + 1
    if ou_quirk:
        k_star = min(k_star, n - 1)
    return 1.0 - k_star / n


def exact_memorization(hits) -> float | None:
    """EM = fraction of answer tokens the model predicts exactly; None for an empty answer."""
    hits = np.asarray(hits, dtype=bool)
    return float(hits.mean()) if len(hits) else None
