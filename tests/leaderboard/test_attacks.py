"""Attack columns of the board on synthetic documents: OU's relearning ratio R against the retain
reference, its edge cases, and the columns through `aggregate` from files on disk."""
from __future__ import annotations

import pytest

from leaderboard import aggregate
from leaderboard import attacks as board_attacks
from tests.leaderboard import lb_synthetic as syn

RELEARN = ("relearn", "forget-split")
QUANTIZE = ("quantize", "int4")


@pytest.mark.parametrize("retain_gain, unlearn_gain, expected", [
    (0.1, 0.4, 0.25),
    (0.4, 0.1, 1.0),        # the retain model relearned more than the row: capped at 1
    (0.1, 0.0, 1.0),        # the attack restored nothing in the row
    (0.1, -0.2, 1.0),       # ... or lowered its knowledge
    (-0.1, 0.4, 0.0),       # the retain model lost knowledge while the row regained it: clipped at 0
    (None, 0.4, None),
    (0.1, None, None),
])
def test_relearn_ratio(retain_gain, unlearn_gain, expected):
    assert board_attacks.relearn_ratio(retain_gain, unlearn_gain) == (
        None if expected is None else pytest.approx(expected))


def test_knowledge_gain_points_towards_more_knowledge():
    assert board_attacks.knowledge_gain(0.5, 0.2, "lower") == pytest.approx(0.3)   # forget_prob rose
    assert board_attacks.knowledge_gain(0.5, 0.2, "higher") == pytest.approx(-0.3)  # e.g. a forget loss fell
    assert board_attacks.knowledge_gain(0.5, 0.2, "zero") is None
    assert board_attacks.knowledge_gain(None, 0.2, "lower") is None


def _row(role, row_id, **extra):
    return {"row_id": row_id, "benchmark": "tofu-tiny", "split": "forget10", "model": "tiny-llama",
            "evaluator_variant": "ours", "role": role, "forget_metric": "forget_quality", **extra}


def _doc(seed, value, before, label=RELEARN, role="unlearned", args=None, state="ok"):
    base = syn.document(role=role, method=role if role != "unlearned" else "ga", seed=seed)
    return (None, syn.attack_document(base, label, value, before, args=args, state=state))


def test_R_per_seed_against_the_retain_reference_then_seed_mean():
    rows = [_row("unlearned", "ga"), _row("retain", "retain"), _row("target", "target"),
            _row("unlearned", "other-variant", evaluator_variant="full")]
    documents = {
        # Δ_unlearn 0.4 and 0.2; the retain model (seed 0 only) gains 0.1: R 0.25 and 0.5
        "ga": [_doc(0, 0.5, 0.1), _doc(1, 0.4, 0.2), _doc(0, 0.3, 0.1, QUANTIZE), _doc(1, 0.3, 0.2, QUANTIZE)],
        "retain": [_doc(0, 0.3, 0.2, role="retain"), _doc(0, 0.25, 0.2, QUANTIZE, role="retain")],
        "target": [_doc(0, 0.95, 0.9, role="target")],
        "other-variant": [_doc(0, 0.5, 0.1)],  # no retain reference under this evaluator variant
    }
    board_attacks.add_columns(rows, documents)
    ga, retain, target, other = rows
    assert ga["attack:relearn-forget-split:R"] == pytest.approx(0.375)
    assert ga["attack:relearn-forget-split:R:ci_low"] < 0.375 < ga["attack:relearn-forget-split:R:ci_high"]
    assert "attack:quantize-int4:R" not in ga  # R is a relearning ratio only
    assert "attack:relearn-forget-split:R" not in retain and "attack:relearn-forget-split:R" not in target
    assert other["attack:relearn-forget-split:R"] is None
    # the recovery columns are unchanged by R
    assert ga["attack:relearn-forget-split:recovery"] == pytest.approx((0.4 / 0.8 + 0.2 / 0.7) / 2)


def test_R_pairs_seeds_with_the_retain_seed_of_the_same_number_and_needs_the_same_arguments():
    rows = [_row("unlearned", "ga"), _row("retain", "retain"), _row("unlearned", "lr", method="ga")]
    documents = {
        "ga": [_doc(0, 0.5, 0.1), _doc(1, 0.5, 0.1)],
        "retain": [_doc(0, 0.3, 0.2, role="retain"), _doc(1, 0.5, 0.2, role="retain")],
        "lr": [_doc(0, 0.5, 0.1, args={"lr": 0.1})],
    }
    board_attacks.add_columns(rows, documents)
    assert rows[0]["attack:relearn-forget-split:R"] == pytest.approx((0.25 + 0.75) / 2)
    assert rows[2]["attack:relearn-forget-split:R"] is None  # the retain model was attacked otherwise


def test_R_skips_not_applicable_seeds_and_a_row_the_attack_left_unmoved_is_fully_robust():
    rows = [_row("unlearned", "ga"), _row("retain", "retain")]
    documents = {"ga": [_doc(0, 0.1, 0.1), _doc(1, None, None, state="not_applicable")],
                 "retain": [_doc(0, 0.3, 0.2, role="retain")]}
    board_attacks.add_columns(rows, documents)
    assert rows[0]["attack:relearn-forget-split:R"] == 1.0
    assert rows[0]["attack:relearn-forget-split:R:ci_low"] is None  # one applicable seed: no interval
    assert rows[0]["attack:relearn-forget-split:status"] == "not_applicable"


def test_R_through_aggregate_from_files(tmp_path):
    root = tmp_path / "results"
    metrics = {"forget_quality": 0.5, "model_utility": 0.5, "forget_prob": 0.1}
    runs = [syn.document(method="ga", seed=s, metrics={**metrics, "forget_quality": 0.5 + s / 10}) for s in (0, 1)]
    retain = syn.document(role="retain", method="retain", metrics={**metrics, "forget_prob": 0.2})
    target = syn.document(role="target", method="target", metrics={**metrics, "forget_prob": 0.9})
    for document in (*runs, retain, target):
        syn.write(root, document)
    for document, value in ((runs[0], 0.5), (runs[1], 0.3), (retain, 0.3), (target, 0.92)):
        before = document["metrics"]["forget_prob"]
        syn.write_attack(root, syn.attack_document(document, RELEARN, value, before))
    rows = aggregate.aggregate(aggregate.load_results([root]))
    by_role = {row["role"]: row for row in rows}
    assert len(rows) == 3  # attacks are columns of their rows, never rows of their own
    ga = by_role["unlearned"]
    assert ga["attack:relearn-forget-split:R"] == pytest.approx((0.1 / 0.4 + 0.1 / 0.2) / 2)
    assert "attack:relearn-forget-split:R" in aggregate.columns(rows)
    assert "attack:relearn-forget-split:R" not in by_role["retain"]
