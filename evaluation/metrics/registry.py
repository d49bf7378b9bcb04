"""Metric metadata in one place: which direction is better and which values are possible, for the
leaderboard, its validator and plots."""
from __future__ import annotations

import math
from dataclasses import dataclass

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


_METRICS = [
    MetricInfo("forget_quality", HIGHER, "KS p-value vs the retain model's forget truth ratios", UNIT),
    MetricInfo("model_utility", HIGHER, "harmonic mean of 9 retain/RA/WF values", UNIT),
    MetricInfo("forget_truth_ratio", HIGHER, "mean min(R, 1/R) on the forget set (1 = indifferent)", UNIT),
    MetricInfo("forget_prob", LOWER, "mean exp(-mean answer loss) on the forget set", UNIT),
    MetricInfo("forget_rouge", LOWER, "ROUGE-L recall of greedy answers on the forget set", UNIT),
    MetricInfo("retain_prob", HIGHER, "mean exp(-mean answer loss) on retain_perturbed", UNIT),
    MetricInfo("retain_rouge", HIGHER, "ROUGE-L recall on retain_perturbed", UNIT),
    MetricInfo("retain_truth_ratio", HIGHER, "mean max(0, 1 - R) on retain_perturbed", UNIT),
    MetricInfo("ra_prob", HIGHER, "probability with options on real authors", UNIT),
    MetricInfo("ra_rouge", HIGHER, "ROUGE-L recall on real authors", UNIT),
    MetricInfo("ra_truth_ratio", HIGHER, "mean max(0, 1 - R) on real authors", UNIT),
    MetricInfo("wf_prob", HIGHER, "probability with options on world facts", UNIT),
    MetricInfo("wf_rouge", HIGHER, "ROUGE-L recall on world facts", UNIT),
    MetricInfo("wf_truth_ratio", HIGHER, "mean max(0, 1 - R) on world facts", UNIT),
    MetricInfo("extraction_strength", LOWER, "OU extraction strength on the forget set", UNIT),
    MetricInfo("exact_memorization", LOWER, "teacher-forced token accuracy on the forget set", UNIT),
    MetricInfo("privleak", CLOSER_TO_ZERO, "MinK AUC relative to the retain model, x100", PRIVLEAK),
    MetricInfo("mia_loss_auc", CLOSER_TO_HALF, "LOSS attack AUC, forget=0 vs holdout=1", UNIT),
    MetricInfo("mia_zlib_auc", CLOSER_TO_HALF, "ZLib attack AUC", UNIT),
    MetricInfo("mia_mink_auc", CLOSER_TO_HALF, "Min-K (k=0.4) attack AUC", UNIT),
    MetricInfo("mia_minkpp_auc", CLOSER_TO_HALF, "Min-K++ (k=0.4) attack AUC", UNIT),
]
METRICS: dict[str, MetricInfo] = {m.name: m for m in _METRICS}


def direction(name: str) -> str:
    try:
        return METRICS[name].better
    except KeyError:
        raise ValueError(f"no direction recorded for metric {name!r}; add it to {__name__}") from None


def is_better(name: str, a: float, b: float) -> bool:
    """True when value `a` is strictly better than `b` for metric `name`."""
    better = direction(name)
    if better == HIGHER:
        return a > b
    if better == LOWER:
        return a < b
    target = 0.0 if better == CLOSER_TO_ZERO else 0.5
    return abs(a - target) < abs(b - target)
