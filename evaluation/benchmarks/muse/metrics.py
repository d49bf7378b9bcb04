"""MUSE metrics (metrics.md §2): ROUGE-L F1, the KnowMem stop strings, Min-k% and the AUC / PrivLeak
of MUSE's own code. OU's AUC / PrivLeak convention is `evaluation.metrics.mia` (1 − AUC_OU = AUC_MUSE).
"""
from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import auc as area_under, roc_curve

from evaluation.metrics import rouge

KNOWMEM_STOP_STRINGS = ("\n\n", "\nQuestion", "Question:")  # MUSE cuts at each in turn, keeps the part before
MINK_K = 0.4
# constants.py AUC_RETRAIN of MUSE (forget vs holdout, Min-40%), nested by corpus. The official
# eval.py indexes the dict without the corpus level (a bug); the corpus level is the intent.
AUC_RETRAIN = {"news": 0.47719999999999996, "books": 0.5392999999999999}


def rouge_l_f1(reference: str, output: str, *, use_stemmer: bool) -> float:
    """`rouge_score` ROUGE-L F-measure scored as (reference, output)."""
    return float(rouge.scorer(("rougeL",), use_stemmer).score(reference, output)["rougeL"].fmeasure)


def cut_at_stop_strings(text: str, stops: tuple[str, ...] = KNOWMEM_STOP_STRINGS) -> str:
    """Split successively at each stop string and keep the part before (MUSE KnowMem)."""
    for stop in stops:
        text = text.split(stop)[0]
    return text


def knowmem_prompt(icl: list[dict], question: str) -> str:
    """MUSE's few-shot prompt: every ICL pair as "Question: q\\nAnswer: a\\n\\n", then the question."""
    shots = "".join(f"Question: {row['question']}\nAnswer: {row['answer']}\n\n" for row in icl)
    return f"{shots}Question: {question}\nAnswer: "


def min_k_count(num_tokens: int, k: float, *, at_least_one: bool) -> int:
    """How many lowest log-probs Min-k% averages: MUSE ⌊k·T⌋, OU max(1, ⌊k·T⌋)."""
    count = math.floor(k * num_tokens)
    return max(1, count) if at_least_one else count


def min_k_score(token_logprobs, k: float = MINK_K, *, at_least_one: bool = False) -> float:
    """−mean of the lowest ⌊k·T⌋ token log-probs (loss-like: higher = less member-like).

    MUSE's ⌊k·T⌋ is 0 below 1/k tokens, where its mean is undefined: we raise instead of averaging
    nothing, so an unscorable text is never a silent NaN. OU's convention (`at_least_one`) scores a
    text with no token at all 0, as OU does."""
    values = np.sort(np.asarray(token_logprobs, dtype=np.float64))
    if at_least_one and len(values) == 0:
        return 0.0  # OU's MinKProbAttack scores a text with no scored token 0
    count = min_k_count(len(values), k, at_least_one=at_least_one)
    if count == 0:
        raise ValueError(f"Min-{k:.0%} of a {len(values)}-token text averages no token (needs at least "
                         f"{math.ceil(1 / k)} scored tokens)")
    return float(-values[:count].mean())


def muse_auc(forget_scores, holdout_scores) -> float:
    """MUSE's AUC: forget texts labelled 0, holdout 1, ROC on the negated (likelihood-like) score.
    A model that memorised the forget texts gives AUC ≈ 0; one that never saw them ≈ 0.5."""
    labels = np.r_[np.zeros(len(forget_scores)), np.ones(len(holdout_scores))]
    scores = -np.r_[np.asarray(forget_scores, dtype=np.float64), np.asarray(holdout_scores, dtype=np.float64)]
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(area_under(fpr, tpr))


def muse_privleak(auc_value: float, auc_retrain: float) -> float:
    """(AUC − AUC_retrain) / AUC_retrain × 100: ≈ −100 memorised, 0 like the retrained model."""
    return (auc_value - auc_retrain) / auc_retrain * 100
