"""The metric meta-evaluation's maths on synthetic numbers (leaderboard/meta_eval): AUC orientation
by declared direction, Q / R / HM, bootstrap intervals, replication checks, and the table built from
a synthetic result tree."""
from __future__ import annotations

import json
import math

import pytest

from evaluation.metrics.declaration import CLOSER_TO_HALF, HIGHER, LOWER, NON_POSITIVE, UNBOUNDED, UNIT
from leaderboard.meta_eval import render, replication, scores, table
from tests.leaderboard import lb_synthetic as syn


@pytest.mark.parametrize("direction, holds, lacks, expected", [
    (LOWER, [0.9, 0.8, 0.7], [0.1, 0.2, 0.3], 1.0),      # forget_prob: knowledge = higher value
    (HIGHER, [0.4, 0.5], [0.8, 0.9], 1.0),               # truth ratio: knowledge = lower value
    (HIGHER, [0.8, 0.9], [0.4, 0.5], 0.0),               # the wrong way round
    (CLOSER_TO_HALF, [0.95, 0.05], [0.5, 0.55], 1.0),    # MIA AUC: knowledge = far from 0.5, either side
    (LOWER, [0.5, 0.5], [0.5, 0.5], 0.5),                # no separation
])
def test_faithfulness_is_oriented_by_the_declared_direction(direction, holds, lacks, expected):
    assert scores.faithfulness(holds, lacks, direction) == pytest.approx(expected)


def test_faithfulness_counts_ties_and_overlap():
    # P = {0.3, 0.6}, N = {0.1, 0.6}: pairs (0.3>0.1) 1, (0.3<0.6) 0, (0.6>0.1) 1, (0.6=0.6) 0.5 -> 2.5 / 4
    assert scores.faithfulness([0.3, 0.6], [0.1, 0.6], LOWER) == pytest.approx(0.625)
    assert scores.faithfulness([], [0.1], LOWER) is None


@pytest.mark.parametrize("value, direction, bounds, expected", [
    (0.3, LOWER, UNIT, 0.3), (0.7, HIGHER, UNIT, pytest.approx(0.3)), (0.2, CLOSER_TO_HALF, UNIT, pytest.approx(0.3)),
    (-2.0, HIGHER, NON_POSITIVE, 2.0),    # a log-likelihood: 0 is the best end
    (1.0, LOWER, UNBOUNDED, None),        # no finite "fully forgotten" end: no ratio
])
def test_knowledge_level(value, direction, bounds, expected):
    assert scores.knowledge_level(value, direction, bounds) == expected


def test_quantization_ratio():
    assert scores.quantization_ratio(0.2, 0.4) == pytest.approx(0.5)   # quantization doubled the knowledge
    assert scores.quantization_ratio(0.4, 0.2) == 1.0                  # it hid more: capped at 1
    assert scores.quantization_ratio(0.0, 0.0) == 1.0                  # nothing to reveal
    assert scores.quantization_ratio(None, 0.3) is None


def test_relearning_ratio_is_the_leaderboards():
    assert scores.relearning_ratio(0.1, 0.4) == pytest.approx(0.25)
    assert scores.relearning_ratio(0.5, 0.4) == 1.0
    assert scores.relearning_ratio(-0.1, 0.4) == 0.0
    assert scores.relearning_ratio(0.3, 0.0) == 1.0
    assert scores.relearning_ratio(None, 0.4) is None


def test_harmonic_mean():
    assert scores.harmonic_mean(0.5, 1.0) == pytest.approx(2 / 3)
    assert scores.harmonic_mean(0.0, 1.0) == 0.0
    assert scores.harmonic_mean(None, 1.0) is None


def test_bootstrap_intervals_hold_the_estimate_and_repeat():
    holds, lacks = [0.9, 0.6, 0.35, 0.8], [0.1, 0.4, 0.3, 0.5]
    first = scores.bootstrap_faithfulness(holds, lacks, LOWER, samples=300, level=0.95, seed=3)
    again = scores.bootstrap_faithfulness(holds, lacks, LOWER, samples=300, level=0.95, seed=3)
    assert first == again
    assert 0.0 <= first.ci_low <= first.value <= first.ci_high <= 1.0
    assert first.ci_low < first.ci_high  # overlapping pools: the resampled AUC varies
    perfect = scores.bootstrap_faithfulness([0.9, 0.8], [0.1, 0.2], LOWER, samples=100, level=0.95, seed=0)
    assert (perfect.value, perfect.ci_low, perfect.ci_high) == (1.0, 1.0, 1.0)
    mean = scores.bootstrap_mean([0.2, 0.4, None, 0.9], samples=500, level=0.9, seed=1)
    assert mean.value == pytest.approx(0.5) and mean.ci_low < 0.5 < mean.ci_high


def test_replication_checks_are_evaluated_on_the_numbers():
    rows = {"a": {"faithfulness": {"value": 0.9}}, "b": {"faithfulness": {"value": 0.6}},
            "c": {"faithfulness": {"value": 0.7}}, "d": {"faithfulness": {"value": None}}}
    check = {"claim": "a is faithful", "score": "faithfulness", "test": "at_or_above_median",
             "metrics": ["a"], "among": ["a", "b", "c"]}
    assert replication.evaluate(check, rows)["holds"] is True
    assert replication.evaluate({**check, "metrics": ["b"]}, rows)["holds"] is False
    assert replication.evaluate({**check, "metrics": ["d"]}, rows)["holds"] is None
    with pytest.raises(ValueError, match="score must be one of"):
        replication.evaluate({**check, "score": "auc"}, rows)


# ---- the table from a synthetic result tree ------------------------------------------------

def _tree(root):
    """P: three targets (forget_prob high, truth ratio low), N: three retain models (the opposite; a
    retain model's forget_quality is its own reference); two unlearned runs on m0 with quantize and
    relearn evaluations and m0's retain model relearned."""
    def metrics(prob, ratio, fq):
        return {"forget_prob": prob, "forget_truth_ratio": ratio, "forget_quality": fq, "model_utility": 0.6}
    for k, (p_prob, n_prob) in enumerate([(0.9, 0.2), (0.8, 0.1), (0.85, 0.3)]):
        syn.write(root, syn.document(model=f"m{k}", role="target", method="target",
                                     metrics=metrics(p_prob, 0.4, 1e-5)))
        retain = syn.document(model=f"m{k}", role="retain", method="retain", metrics=metrics(n_prob, 0.7, 1.0))
        retain["metric_details"] = {"forget_quality": {"retain_reference": "self (this is the retain model)"}}
        path = syn.write(root, retain)
    relearned_retain = syn.attack_document(syn.document(model="m0", role="retain", method="retain",
                                                        metrics=metrics(0.2, 0.7, 1.0)),
                                           ("relearn", "forget-all"), None, None)
    relearned_retain["metrics"] = metrics(0.3, 0.6, 1.0)          # Δ forget_prob 0.1, Δ truth ratio 0.1
    relearned_retain["metric_details"]["attack"]["forget_items"] = "all"
    syn.write_attack(root, relearned_retain)
    for method, (before, quantized, relearned) in {"ga": (0.1, 0.2, 0.5), "npo": (0.2, 0.1, 0.25)}.items():
        run = syn.document(model="m0", method=method, metrics=metrics(before, 0.7, 0.5))
        syn.write(root, run)
        q = syn.attack_document(run, ("quantize", "int4"), None, None)
        q["metrics"] = metrics(quantized, 0.7, 0.5)
        q["metric_details"]["attack"]["forget_items"] = "all"
        syn.write_attack(root, q)
        r = syn.attack_document(run, ("relearn", "forget-all"), None, None)
        r["metrics"] = metrics(relearned, 0.6, 0.5)
        r["metric_details"]["attack"]["forget_items"] = "all"
        syn.write_attack(root, r)
    return path


SPEC = {"benchmark": "tofu-tiny", "split": "forget10",
        "pools": {"P": {"description": "targets", "members": [{"role": "target", "models": ["m0", "m1", "m2"]}]},
                  "N": {"description": "retain models", "members": [{"role": "retain", "models": ["m0", "m1", "m2"]}]}},
        "robustness": {"quantize": "quantize-int4", "relearn": "relearn-forget-all"},
        "bootstrap": {"samples": 200, "level": 0.95, "seed": 0},
        "replication": {"reference": "a published ordering", "checks": [
            {"claim": "forget_prob beats the truth ratio", "score": "faithfulness", "test": "at_or_above_median",
             "metrics": ["forget_prob"], "among": ["forget_prob", "forget_truth_ratio"]}]}}


def test_table_from_results(tmp_path):
    _tree(tmp_path)
    path = table.write(tmp_path, SPEC)
    assert path == tmp_path / "meta_eval" / "tofu-tiny" / "metric_table.json"
    assert not list(path.parent.glob(".*.tmp"))
    written = json.loads(path.read_text())
    assert written["pools"] == {"P": {"models": 3, "description": "targets"},
                                "N": {"models": 3, "description": "retain models"}}
    assert written["robustness_models"] == 2
    assert written["bootstrap"]["over"] == "models"
    assert set(written["definitions"]) >= {"faithfulness", "Q", "R", "HM", "lower_is_better"}
    rows = {row["metric"]: row for row in written["metrics"]}
    assert rows["forget_quality"]["headline"] and not rows["forget_prob"]["headline"]
    assert rows["forget_quality"]["faithfulness"]["value"] is None and "own retain reference" in rows["forget_quality"]["note"]
    prob = rows["forget_prob"]
    assert prob["direction"] == LOWER and prob["faithfulness"]["value"] == 1.0
    assert rows["forget_truth_ratio"]["faithfulness"]["value"] == 1.0   # lower ratio = more knowledge
    # Q: ga min(0.1/0.2, 1) = 0.5, npo min(0.2/0.1, 1) = 1; R: ga 0.1/0.4 = 0.25, npo 0.1/0.05 -> 1
    assert prob["Q"]["value"] == pytest.approx(0.75) and prob["R"]["value"] == pytest.approx(0.625)
    assert prob["HM"]["value"] == pytest.approx(2 * 0.75 * 0.625 / (0.75 + 0.625))
    assert prob["n"] == {"faithfulness": 6, "P": 3, "N": 3, "Q": 2, "R": 2}
    # truth ratio (higher is better, k = 1 - v): unchanged by quantization, Δ 0.1 on both -> R 1
    assert rows["forget_truth_ratio"]["Q"]["value"] == 1.0 and rows["forget_truth_ratio"]["R"]["value"] == 1.0
    assert written["replication"]["checks"][0]["holds"] is True
    page = render.render([written])
    assert "## tofu-tiny (forget10)" in page and "| forget_prob | lower | 1.00" in page
    assert "Replication of a published ordering" in page


def test_a_missing_pool_evaluation_is_named(tmp_path):
    _tree(tmp_path)
    spec = {**SPEC, "pools": {**SPEC["pools"], "P": {"description": "x", "members": [{"role": "target", "models": ["m9"]}]}}}
    with pytest.raises(table.pools.PoolError, match="m9/reference/target/metrics.json"):
        table.build(tmp_path, spec)
