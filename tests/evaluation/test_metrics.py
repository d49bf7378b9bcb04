import math
import zlib
from math import comb

import numpy as np
import pytest

from evaluation.metrics import memorization as mem
from evaluation.metrics import mia
from evaluation.metrics import registry
from evaluation.benchmarks.tofu import metrics as m


def test_probability_and_options_by_hand():
    assert m.probability([0.0, math.log(2)]) == pytest.approx((1 + 0.5) / 2)
    # P(a) = 0.5, perturbed P = 0.25, 0.125, 0.125 -> 0.5 / 1.0
    items = m.probability_with_options_items([math.log(2)], [[math.log(4), math.log(8), math.log(8)]])
    assert items[0] == pytest.approx(0.5)
    with_eps = m.probability_with_options_items([math.log(2)], [[math.log(4)] * 3], epsilon=1e-10)
    assert with_eps[0] == pytest.approx(0.5 / 1.25)


def test_truth_ratio_is_geometric_mean_over_paraphrase():
    # L̄(â) = 1, perturbed L̄ = 2 and 4 -> P̃ = exp(-3), P̂ = exp(-1), R = exp(-2)
    r = m.truth_ratio_items([1.0], [[2.0, 4.0]])
    assert r[0] == pytest.approx(math.exp(-2))
    assert m.truth_ratio_closer_to_one([0.5, 2.0, 1.0]) == pytest.approx((0.5 + 0.5 + 1) / 3)
    assert m.truth_ratio_true_better([0.25, 2.0]) == pytest.approx((0.75 + 0) / 2)
    assert m.truth_ratio_prob_mean([0.0], [[0.0, 0.0]]) == pytest.approx(0.5)


def test_ks_floor_matches_binomial_and_saturation_flag():
    assert m.ks_floor(5) == pytest.approx(2 / comb(10, 5))
    assert m.ks_floor(40) == pytest.approx(1.86e-23, rel=1e-2)
    assert m.ks_floor(300) == pytest.approx(1.48e-179, rel=1e-2)
    assert m.ks_floor(400) == pytest.approx(1.06e-239, rel=1e-2)
    separated = m.forget_quality([0.1, 0.2, 0.3, 0.4, 0.5], [0.6, 0.7, 0.8, 0.9, 1.0])
    assert separated["pvalue"] == pytest.approx(2 / comb(10, 5)) and separated["saturated"]
    assert separated["statistic"] == 1.0
    same = m.forget_quality([0.1, 0.5, 0.9], [0.1, 0.5, 0.9])
    assert same["pvalue"] == 1.0 and not same["saturated"]
    # invariant to the same monotone map (R vs 1/R)
    a, b = np.array([0.2, 0.5, 0.7, 1.3]), np.array([0.4, 0.9, 1.1, 2.0])
    assert m.forget_quality(a, b)["pvalue"] == pytest.approx(m.forget_quality(1 / a, 1 / b)["pvalue"])


def test_model_utility_harmonic_mean_and_zero():
    comps = {f"c{i}": v for i, v in enumerate([0.5, 0.25, 1, 1, 1, 1, 1, 1, 1])}
    assert m.model_utility(comps) == pytest.approx(9 / (2 + 4 + 7))
    assert m.model_utility({**comps, "c0": 0.0}) == 0.0
    with pytest.raises(ValueError, match="9 components"):
        m.model_utility({"a": 1.0})


def test_rouge_recall_with_stemming():
    scores = m.rouge_recall("The cats were running home", "cat run")
    assert scores["rougeL_recall"] == pytest.approx(2 / 5)
    assert m.rouge_recall("Oslo , Norway .", "Oslo, Norway.")["rougeL_recall"] == 1.0


def test_extraction_strength_and_exact_memorization():
    assert mem.extraction_strength([1, 1, 1, 1]) == 1.0
    assert mem.extraction_strength([0, 1, 1, 1]) == pytest.approx(0.75)
    assert mem.extraction_strength([1, 0, 1, 1]) == pytest.approx(0.5)
    assert mem.extraction_strength([1, 1, 1, 0]) == 0.0
    assert mem.extraction_strength([1, 1, 1, 0], ou_quirk=True) == pytest.approx(0.25)
    assert mem.extraction_strength([]) == 0.0
    assert mem.exact_memorization([1, 0, 1, 1]) == 0.75
    assert mem.exact_memorization([]) is None


def test_mia_scores_by_hand():
    lp = np.log([0.5, 0.25, 0.125, 1.0, 0.5])
    assert mia.loss_score(lp) == pytest.approx(-lp.mean())
    assert mia.zlib_score(lp, "abc") == pytest.approx(-lp.mean() / len(zlib.compress(b"abc")))
    # k = 0.4 of 5 tokens -> the lowest 2: log 0.125, log 0.25
    assert mia.mink_score(lp) == pytest.approx(-(math.log(0.125) + math.log(0.25)) / 2)
    assert mia.mink_score(lp[:2]) == pytest.approx(-math.log(0.25))  # max(1, floor(0.8)) = 1
    mu, sigma = np.zeros(5), np.full(5, 2.0)
    assert mia.minkpp_score(lp, mu, sigma) == pytest.approx(-(math.log(0.125) + math.log(0.25)) / 4)


def test_auc_labels_and_privleak_sign():
    memorised = mia.auc([0.1, 0.2], [1.0, 2.0])  # forget less lossy than holdout
    assert memorised == 1.0
    assert mia.auc([1.0, 2.0], [0.1, 0.2]) == 0.0
    assert mia.privleak(0.5, 0.5) == pytest.approx(0.0)
    assert mia.privleak(1.0, 0.5) == pytest.approx(-100.0)  # still member-like: under-unlearned
    assert mia.privleak(0.25, 0.5) > 0  # over-unlearned
    assert mia.privleak(0.8, 0.6) == pytest.approx((0.2 - 0.4) / 0.4 * 100, rel=1e-8)


def test_registry_directions():
    assert registry.direction("forget_quality") == registry.HIGHER
    assert registry.is_better("privleak", -1.0, 5.0)
    assert registry.is_better("forget_rouge", 0.1, 0.2)
    with pytest.raises(ValueError, match="no direction"):
        registry.direction("nope")
