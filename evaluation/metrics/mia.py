"""Membership-inference scores, AUC and privleak (OU, metrics.md §1.4).

Scores are loss-like (higher = less likely = more non-member-like); inputs are the answer tokens'
log-probabilities and, for Min-K++, the per-position mean μ_t and std σ_t of log p over the vocab.
"""
from __future__ import annotations

import math
import zlib

import numpy as np
from sklearn.metrics import roc_auc_score

MINK_K = 0.4  # OU TOFU/MUSE configs (class default 0.2)
PRIVLEAK_EPSILON = 1e-10
FALLBACK_REFERENCE_AUC = 0.5  # OU `ref_value` when no retain log is given


def loss_score(token_logprobs) -> float:
    """LOSS: L̄ = −mean log p(y_t)."""
    return float(-np.mean(token_logprobs))


def zlib_score(token_logprobs, text: str) -> float:
    """ZLib: L̄ / len(zlib.compress(text as UTF-8))."""
    return loss_score(token_logprobs) / len(zlib.compress(text.encode("utf-8")))


def _lowest_mean(values, k: float) -> float:
    values = np.sort(np.asarray(values, dtype=np.float64))
    count = max(1, math.floor(k * len(values)))
    return float(values[:count].mean())


def mink_score(token_logprobs, k: float = MINK_K) -> float:
    """Min-K: −mean of the lowest max(1, ⌊kT⌋) token log-probs."""
    return -_lowest_mean(token_logprobs, k)


def minkpp_score(token_logprobs, mu, sigma, k: float = MINK_K) -> float:
    """Min-K++: z_t = (log p(y_t) − μ_t)/σ_t; score = −mean of the lowest k fraction of z_t."""
    z = (np.asarray(token_logprobs) - np.asarray(mu)) / np.asarray(sigma)
    return -_lowest_mean(z, k)


def auc(forget_scores, holdout_scores) -> float:
    """roc_auc_score with labels forget = 0, holdout = 1 on loss-like scores: → 1 when forget items
    are more likely than holdout ones (memorised), ≈ 0.5 for a model that never saw them."""
    labels = [0] * len(forget_scores) + [1] * len(holdout_scores)
    return float(roc_auc_score(labels, list(forget_scores) + list(holdout_scores)))


def privleak(auc_value: float, auc_reference: float) -> float:
    """((1 − AUC) − (1 − AUC_ref)) / (1 − AUC_ref + ε) × 100: 0 ideal, negative = still member-like
    (under-unlearned), positive = over-unlearned."""
    return ((1 - auc_value) - (1 - auc_reference)) / (1 - auc_reference + PRIVLEAK_EPSILON) * 100
