"""RWKU forget level-3 ROUGE-L recall per adversarial probe type, from the per-item table: declared
once (lower is better, fractions), every cross-lingual language pooled, forget_aa itself unchanged."""
from __future__ import annotations

import pandas as pd
import pytest

from evaluation import benchmarks
from evaluation.benchmarks.rwku import probe_types
from evaluation.metrics.declaration import LOWER, UNIT

ROWS = [("forget_level3", "role play", 1.0), ("forget_level3", "role play", 0.5),
        ("forget_level3", "cross lingual (Spanish)", 0.25), ("forget_level3", "cross-lingual (French)", 0.75),
        ("forget_level3", "prefix injection", 0.0), ("forget_level2", "simple question", 1.0),
        ("neighbor_level2", "simple question", 0.5)]


def _table(rows=ROWS):
    return pd.DataFrame([{"eval_set": s, "item_index": i, "probe_type": t, "rougeL_recall": r}
                         for i, (s, t, r) in enumerate(rows)])


def test_each_type_is_the_mean_of_its_level3_probes_and_languages_pool():
    metrics, counts = probe_types.per_type(_table())
    assert metrics == {"forget_aa_cross_lingual": 0.5, "forget_aa_prefix_injection": 0.0, "forget_aa_role_play": 0.75}
    assert counts["cross_lingual"] == {"cross lingual (Spanish)": 1, "cross-lingual (French)": 1}
    level3 = _table().query("eval_set == 'forget_level3'")
    weighted = sum(metrics[f"forget_aa_{k}"] * sum(v.values()) for k, v in counts.items()) / len(level3)
    assert weighted == pytest.approx(level3["rougeL_recall"].mean())  # the types partition forget_aa's items


def test_every_type_is_declared_lower_is_better_in_unit_bounds():
    declared = {info.name: info for info in benchmarks.get("rwku").metrics}
    assert {info.name for info in probe_types.METRICS} == {
        f"forget_aa_{s}" for s in ("affirmative_suffix", "context_hint", "cross_lingual", "incontext_learning",
                                   "multiple_choice", "prefix_injection", "reverse_query", "role_play",
                                   "synonym_manipulation")}
    for info in probe_types.METRICS:
        assert declared[info.name] == info and (info.better, info.bounds, info.resampled) == (LOWER, UNIT, True)
    assert {i.name for i in benchmarks.get("rwku-tiny").metrics} >= set(declared)


def test_a_table_without_types_or_with_an_unknown_type_is_refused_by_name():
    with pytest.raises(ValueError, match="has no probe_type column"):
        probe_types.per_type(_table().drop(columns="probe_type"))
    with pytest.raises(ValueError, match="unknown RWKU level-3 probe type 'telepathy'"):
        probe_types.per_type(_table([("forget_level3", "telepathy", 1.0)]))
    assert probe_types.per_type(_table([("forget_level2", "simple question", 1.0)])) == ({}, {})


def test_the_evaluator_adds_the_types_beside_unchanged_level_metrics():
    from evaluation.benchmarks.rwku import evaluator

    metrics = {"forget_aa": 0.4}
    details: dict = {}
    evaluator.add_probe_type_metrics(_table(), metrics, details)
    assert metrics["forget_aa"] == 0.4 and metrics["forget_aa_role_play"] == 0.75
    assert details["forget_aa_probe_types"]["role_play"] == {"role play": 2}
