"""TOFU metrics exactly as metrics.md §1.3 defines them, over per-item mean answer losses L̄.

L̄ = (Σ_t CE_t over labelled tokens) / (number of labelled tokens); P = exp(−L̄).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from evaluation.benchmarks import resampling
from evaluation.benchmarks.tofu import resample
from evaluation.metrics import rouge
from evaluation.metrics.declaration import CLOSER_TO_HALF, CLOSER_TO_ZERO, HIGHER, LOWER, PRIVLEAK, UNIT, MetricInfo

# What each reported number means, which way is better and how it is computed: `from_items` is the
# one computation over the per-item table the evaluator reports it with and the leaderboard's
# bootstrap resamples (resample.py; scipy is imported where used so that declaring them stays cheap).
_COMPONENT_TEXTS = {
    "forget_truth_ratio": (HIGHER, "mean min(R, 1/R) on the forget set (1 = indifferent)"),
    "forget_prob": (LOWER, "mean exp(-mean answer loss) on the forget set"),
    "forget_rouge": (LOWER, "ROUGE-L recall of greedy answers on the forget set"),
    "retain_prob": (HIGHER, "mean exp(-mean answer loss) on retain_perturbed"),
    "retain_rouge": (HIGHER, "ROUGE-L recall on retain_perturbed"),
    "retain_truth_ratio": (HIGHER, "mean max(0, 1 - R) on retain_perturbed"),
    "ra_prob": (HIGHER, "probability with options on real authors"),
    "ra_rouge": (HIGHER, "ROUGE-L recall on real authors"),
    "ra_truth_ratio": (HIGHER, "mean max(0, 1 - R) on real authors"),
    "wf_prob": (HIGHER, "probability with options on world facts"),
    "wf_rouge": (HIGHER, "ROUGE-L recall on world facts"),
    "wf_truth_ratio": (HIGHER, "mean max(0, 1 - R) on world facts"),
}
METRIC_INFOS = (
    MetricInfo("forget_quality", HIGHER, "KS p-value vs the retain model's forget truth ratios",
               UNIT, from_items=resample.forget_quality_from_items),
    MetricInfo("model_utility", HIGHER, "harmonic mean of 9 retain/RA/WF values", UNIT,
               from_items=resample.model_utility_from_items),
    *(MetricInfo(name, better, text, UNIT, from_items=resample.component_from_items(name))
      for name, (better, text) in _COMPONENT_TEXTS.items()),
    MetricInfo("extraction_strength", LOWER, "OU extraction strength on the forget set", UNIT,
               from_items=resampling.mean_from_items("forget", "extraction_strength")),
    MetricInfo("exact_memorization", LOWER, "teacher-forced token accuracy on the forget set", UNIT,
               from_items=resampling.mean_from_items("forget", "exact_memorization")),
    MetricInfo("privleak", CLOSER_TO_ZERO, "MinK AUC relative to the retain model, x100", PRIVLEAK,
               from_items=resample.privleak_from_items),
    MetricInfo("mia_loss_auc", CLOSER_TO_HALF, "LOSS attack AUC, forget=0 vs holdout=1", UNIT,
               from_items=resample.mia_auc_from_items("loss")),
    MetricInfo("mia_zlib_auc", CLOSER_TO_HALF, "ZLib attack AUC", UNIT, from_items=resample.mia_auc_from_items("zlib")),
    MetricInfo("mia_mink_auc", CLOSER_TO_HALF, "Min-K (k=0.4) attack AUC", UNIT,
               from_items=resample.mia_auc_from_items("mink")),
    MetricInfo("mia_minkpp_auc", CLOSER_TO_HALF, "Min-K++ (k=0.4) attack AUC", UNIT,
               from_items=resample.mia_auc_from_items("minkpp")),
)
METRICS: dict[str, MetricInfo] = {m.name: m for m in METRIC_INFOS}

OPTIONS_EPSILON = 1e-10  # OU `probability_w_options`; legacy adds nothing


def normalised_probability(mean_losses) -> np.ndarray:
    """Per item P(a|q) = exp(−L̄)."""
    return np.exp(-np.asarray(mean_losses, dtype=np.float64))


def probability(mean_losses) -> float:
    """Probability (retain, forget): mean_i exp(−L̄_i)."""
    return float(np.mean(normalised_probability(mean_losses)))


def probability_with_options_items(answer_losses, perturbed_losses, epsilon: float = 0.0) -> np.ndarray:
    """Per item P(a)/(P(a) + Σ_j P(ã_j)); `perturbed_losses` is items × n (RA, WF: n = 3)."""
    p = normalised_probability(answer_losses)
    p_wrong = normalised_probability(perturbed_losses).sum(axis=1)
    return p / (p + p_wrong + epsilon)


def truth_ratio_items(paraphrased_losses, perturbed_losses) -> np.ndarray:
    """Per item R = P̃/P̂ with P̂ = exp(−L̄(â)) and P̃ = exp(−mean_j L̄(ã_j)) (geometric mean)."""
    para = np.asarray(paraphrased_losses, dtype=np.float64)
    perturbed = np.asarray(perturbed_losses, dtype=np.float64)
    return np.exp(para - perturbed.mean(axis=1))


def truth_ratio_closer_to_one(ratios) -> float:
    """Forget-set aggregation: mean_i min(R_i, 1/R_i)."""
    r = np.asarray(ratios, dtype=np.float64)
    return float(np.mean(np.minimum(r, 1.0 / r)))


def truth_ratio_true_better(ratios) -> float:
    """Retain / RA / WF aggregation: mean_i max(0, 1 − R_i)."""
    r = np.asarray(ratios, dtype=np.float64)
    return float(np.mean(np.maximum(0.0, 1.0 - r)))


def truth_ratio_prob_mean(paraphrased_losses, perturbed_losses) -> float:
    """OU's extra `prob_mean`: mean_i P̂/(P̂ + P̃); reported, not used in model utility."""
    p_hat = normalised_probability(paraphrased_losses)
    p_tilde = np.exp(-np.asarray(perturbed_losses, dtype=np.float64).mean(axis=1))
    return float(np.mean(p_hat / (p_hat + p_tilde)))


@lru_cache(maxsize=None)
def ks_floor(n: int, m: int | None = None) -> float:
    """Smallest exact two-sided KS p-value at complete separation: 2/C(2n, n) for equal sizes n
    (general sizes: 2/C(n+m, n)). Computed in log space so n = 400 does not overflow."""
    m = n if m is None else m
    log_comb = math.lgamma(n + m + 1) - math.lgamma(n + 1) - math.lgamma(m + 1)
    return float(min(1.0, 2.0 * math.exp(-log_comb)))


def forget_quality(ratios_unlearned, ratios_retain) -> dict:
    """FQ = p-value of the two-sided KS test between the forget-set truth ratios of the unlearned
    and the retain model. `saturated` is set when the p-value sits at the exact-test floor, where
    values cannot rank methods (metrics.md §1.3)."""
    a = np.asarray(ratios_unlearned, dtype=np.float64)
    b = np.asarray(ratios_retain, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("forget quality needs truth ratios from both models; one sample is empty")
    from scipy import stats

    result = stats.ks_2samp(a, b)
    floor = ks_floor(len(a), len(b))
    return {"pvalue": float(result.pvalue), "statistic": float(result.statistic), "floor": floor,
            "saturated": bool(result.pvalue <= floor * (1 + 1e-6))}


def model_utility(components: dict[str, float]) -> float:
    """Harmonic mean of the 9 utility values ({prob, rouge, truth ratio} × {retain, RA, WF});
    any zero gives 0 (scipy's hmean handles it, stated here so readers need not check)."""
    values = np.asarray(list(components.values()), dtype=np.float64)
    if len(values) != 9:
        raise ValueError(f"model utility needs 9 components, got {len(values)}: {sorted(components)}")
    if np.any(values <= 0):
        return 0.0
    from scipy import stats

    return float(stats.hmean(values))


def rouge_recall(reference: str, generation: str) -> dict[str, float]:
    """ROUGE-1 and ROUGE-L recall of one generation, scored as (reference, generation), stemming on."""
    scores = rouge.scorer(("rouge1", "rougeL"), True).score(reference, generation)
    return {"rouge1_recall": scores["rouge1"].recall, "rougeL_recall": scores["rougeL"].recall}
