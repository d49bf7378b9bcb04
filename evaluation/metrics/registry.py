"""Metric metadata in one place: which direction is better and which values are possible, for the
leaderboard, its validator and plots."""
from __future__ import annotations

# The declaration and the direction vocabulary live in `declaration`; re-exported for existing imports.
from evaluation.metrics.declaration import (CLOSER_TO_HALF, CLOSER_TO_ZERO, DIRECTIONS, HIGHER, LOWER,  # noqa: F401
                                            NON_NEGATIVE, NON_POSITIVE, PERCENT, PRIVLEAK, UNBOUNDED, UNIT,
                                            MetricInfo)

_METRICS = [
    MetricInfo("forget_quality", HIGHER, "KS p-value vs the retain model's forget truth ratios", UNIT, resampled=True),
    MetricInfo("model_utility", HIGHER, "harmonic mean of 9 retain/RA/WF values", UNIT, resampled=True),
    MetricInfo("forget_truth_ratio", HIGHER, "mean min(R, 1/R) on the forget set (1 = indifferent)", UNIT,
               resampled=True),
    MetricInfo("forget_prob", LOWER, "mean exp(-mean answer loss) on the forget set", UNIT, resampled=True),
    MetricInfo("forget_rouge", LOWER, "ROUGE-L recall of greedy answers on the forget set", UNIT, resampled=True),
    MetricInfo("retain_prob", HIGHER, "mean exp(-mean answer loss) on retain_perturbed", UNIT, resampled=True),
    MetricInfo("retain_rouge", HIGHER, "ROUGE-L recall on retain_perturbed", UNIT, resampled=True),
    MetricInfo("retain_truth_ratio", HIGHER, "mean max(0, 1 - R) on retain_perturbed", UNIT, resampled=True),
    MetricInfo("ra_prob", HIGHER, "probability with options on real authors", UNIT, resampled=True),
    MetricInfo("ra_rouge", HIGHER, "ROUGE-L recall on real authors", UNIT, resampled=True),
    MetricInfo("ra_truth_ratio", HIGHER, "mean max(0, 1 - R) on real authors", UNIT, resampled=True),
    MetricInfo("wf_prob", HIGHER, "probability with options on world facts", UNIT, resampled=True),
    MetricInfo("wf_rouge", HIGHER, "ROUGE-L recall on world facts", UNIT, resampled=True),
    MetricInfo("wf_truth_ratio", HIGHER, "mean max(0, 1 - R) on world facts", UNIT, resampled=True),
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
