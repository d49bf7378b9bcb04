"""Utility at matched forgetting: the crossing maths, seed statuses, and the columns of a table."""
from __future__ import annotations

import json

import pytest

from evaluation.benchmarks.base import MatchedLevel
from leaderboard import aggregate, headline, matched
from leaderboard.matched import Point
from tests.leaderboard import lb_synthetic as syn

LOWER, HIGHER = headline.LOWER, headline.HIGHER


def curve(*triples):
    return [Point(*t) for t in triples]


def test_interpolates_the_utility_linearly_between_the_bracketing_points():
    step, utility = matched.crossing(curve((0, 1.0, 0.8), (10, 0.0, 0.4)), 0.25, LOWER)
    assert step == pytest.approx(7.5) and utility == pytest.approx(0.5)


def test_a_curve_that_starts_at_the_level_crosses_at_step_zero():
    assert matched.crossing(curve((0, 0.2, 0.9), (10, 0.1, 0.3)), 0.25, LOWER) == (0, 0.9)


def test_a_curve_that_never_reaches_the_level_has_no_crossing():
    assert matched.crossing(curve((0, 1.0, 0.9), (10, 0.5, 0.8), (20, 0.3, 0.7)), 0.25, LOWER) is None
    assert matched.crossing([], 0.25, LOWER) is None


def test_a_non_monotone_curve_uses_its_first_crossing():
    points = curve((0, 1.0, 0.9), (10, 0.2, 0.7), (20, 0.6, 0.8), (30, 0.0, 0.1))
    step, utility = matched.crossing(points, 0.4, LOWER)
    assert step == pytest.approx(7.5) and utility == pytest.approx(0.75)


def test_a_point_exactly_on_the_level_is_the_crossing_and_keeps_its_own_utility():
    step, utility = matched.crossing(curve((0, 1.0, 0.9), (10, 0.5, 0.6), (20, 0.25, 0.5)), 0.5, LOWER)
    assert (step, utility) == (pytest.approx(10), pytest.approx(0.6))


def test_higher_is_better_metrics_cross_upwards():
    step, utility = matched.crossing(curve((0, 0.1, 1.0), (4, 0.5, 0.0)), 0.3, HIGHER)
    assert step == pytest.approx(2) and utility == pytest.approx(0.5)
    with pytest.raises(ValueError, match="lower- or higher-is-better"):
        matched.reaches(0.1, 0.2, headline.CLOSER_TO_ZERO)


def test_level_is_the_fixed_value_or_the_scaled_reference():
    assert matched.level_value(MatchedLevel("forget_acc", value=0.3), None) == 0.3
    assert matched.level_value(MatchedLevel("forget_all", reference="target", scale=0.5), 0.4) == pytest.approx(0.2)
    assert matched.level_value(MatchedLevel("m", reference="retain", offset=0.1), 0.4) == pytest.approx(0.5)
    assert matched.level_value(MatchedLevel("m", reference="retain"), None) is None


def trajectory(*points):
    """I1 block: (step, forget_prob, model_utility, forget_quality) per point; the last is final."""
    body = [{"step": s, "metrics": {"forget_prob": fp, "model_utility": mu, "forget_quality": fq}}
            for s, fp, mu, fq in points]
    body[-1]["final"] = True
    return {"every": points[0][0], "points": body}


def seed_document(seed, points, **kwargs):
    document = syn.document(seed=seed, metrics=dict(zip(("forget_prob", "model_utility", "forget_quality"),
                                                        points[-1][1:])), **kwargs)
    if points:
        document["trajectory"] = trajectory(*points)
    return document


ROW = {"role": "unlearned", "forget_metric": "forget_quality", "utility_metric": "model_utility"}
SPEC = MatchedLevel("forget_prob", reference="retain", text="the retain model's forget probability")
TARGET = {"forget_prob": 0.9, "model_utility": 0.8, "forget_quality": 0.001}


def test_seeds_that_partly_reach_the_level_say_so_and_average_the_ones_that_did():
    reached = seed_document(0, [(10, 0.5, 0.6, 0.01), (20, 0.1, 0.4, 0.2)])
    missed = seed_document(1, [(10, 0.6, 0.7, 0.01), (20, 0.4, 0.6, 0.05)])
    out = matched.row_columns(ROW, [reached, missed], SPEC, 0.3, TARGET)
    assert out["matched_status"] == "reached 1/2 seeds"
    assert out["utility_at_matched"] == pytest.approx(0.5)  # halfway from (0.5, 0.6) to (0.1, 0.4)
    assert out["utility_at_matched_ci_low"] is None  # one seed: no interval
    assert out["matched_level"] == pytest.approx(0.3) and out["matched_metric"] == "forget_prob"
    assert out["matched_text"] == SPEC.text
    # [step, forget_quality, model_utility, forget_prob]: the matched metric rides along as a 4th value
    assert json.loads(out["curve"]) == [[0, 0.001, 0.8, 0.9],
                                        [10, pytest.approx(0.01), pytest.approx(0.65), pytest.approx(0.55)],
                                        [20, pytest.approx(0.125), pytest.approx(0.5), pytest.approx(0.25)]]


def test_statuses_for_all_none_missing_trajectory_and_missing_level():
    a = seed_document(0, [(10, 0.2, 0.6, 0.1)])
    b = seed_document(1, [(10, 0.1, 0.5, 0.1)])
    both = matched.row_columns(ROW, [a, b], SPEC, 0.3, TARGET)
    assert both["matched_status"] == "reached"
    assert both["utility_at_matched"] == pytest.approx((0.8 + (0.6 / 0.7) * -0.2 + 0.8 + (0.6 / 0.8) * -0.3) / 2)
    assert both["utility_at_matched_ci_low"] < both["utility_at_matched"] < both["utility_at_matched_ci_high"]
    assert matched.row_columns(ROW, [a, b], SPEC, 0.05, TARGET)["matched_status"] == "not reached"
    endpoint_only = syn.document(metrics={"forget_prob": 0.0, "model_utility": 0.9, "forget_quality": 0.5})
    out = matched.row_columns(ROW, [endpoint_only], SPEC, 0.3, TARGET)
    assert out["matched_status"] == "no trajectory" and out["utility_at_matched"] is None and out["curve"] is None
    assert matched.row_columns(ROW, [a], SPEC, None, TARGET)["matched_status"] == "no level"
    assert matched.row_columns(ROW, [a], None, None, TARGET)["matched_status"] == "no level"
    reference = matched.row_columns({**ROW, "role": "retain"}, [a], SPEC, 0.3, TARGET)
    assert reference["matched_status"] is None and reference["matched_level"] == pytest.approx(0.3)


def test_without_a_target_row_the_curve_starts_at_the_first_trajectory_point():
    a = seed_document(0, [(10, 0.2, 0.6, 0.1), (20, 0.1, 0.5, 0.2)])
    out = matched.row_columns(ROW, [a], SPEC, 0.3, None)
    assert out["utility_at_matched"] == pytest.approx(0.6)  # crossing at the first point
    assert json.loads(out["curve"])[0] == [10, pytest.approx(0.1), pytest.approx(0.6), pytest.approx(0.2)]


def test_the_table_gets_levels_utilities_and_ranks_from_the_reference_and_target_rows(tmp_path):
    documents = []

    def add(document):
        documents.append((syn.write(tmp_path, document), document))

    add(syn.document(role="target", method="target",
                     metrics={"forget_prob": 0.9, "model_utility": 0.8, "forget_quality": 0.001}))
    add(syn.document(role="retain", method="retain",
                     metrics={"forget_prob": 0.2, "model_utility": 0.7, "forget_quality": 1.0}))
    for method, utility_at_level in (("npo", 0.6), ("ga", 0.4), ("simnpo", 0.7)):
        for seed in (0, 1):
            written = syn.document(method=method, seed=seed,
                                   metrics={"forget_prob": 0.1, "model_utility": utility_at_level - 0.1,
                                            "forget_quality": 0.5})
            path = syn.write(tmp_path, written)
            # the curve passes (forget_prob 0.2, utility utility_at_level) exactly at step 10
            written["trajectory"] = trajectory((10, 0.2, utility_at_level, 0.3), (20, 0.1, utility_at_level - 0.1, 0.5))
            documents.append((path, written))
    add(syn.document(method="graddiff", metrics={"forget_prob": 0.1, "model_utility": 0.9, "forget_quality": 0.5}))
    rows = {row["method"]: row for row in aggregate.aggregate(documents)}
    assert rows["npo"]["matched_level"] == pytest.approx(0.2)
    assert rows["npo"]["utility_at_matched"] == pytest.approx(0.6)
    assert rows["npo"]["utility_at_matched_ci_low"] == pytest.approx(0.6)  # equal seeds: zero-width interval
    assert {m: rows[m]["matched_rank"] for m in ("simnpo", "npo", "ga", "graddiff")} == \
        {"simnpo": 1, "npo": 2, "ga": 3, "graddiff": None}
    assert rows["graddiff"]["matched_status"] == "no trajectory"
    assert rows["target"]["matched_status"] is None and rows["target"]["matched_rank"] is None
    assert json.loads(rows["ga"]["curve"])[0] == [0, 0.001, 0.8, 0.9]


def test_a_build_has_table_format_4_and_the_matched_columns_typed(tmp_path):
    import pandas as pd

    from leaderboard import build

    syn.demo_grid(tmp_path / "r", seeds=(0,))
    record = build.build([tmp_path / "r"], tmp_path / "site")
    assert record["table_format"] == aggregate.TABLE_FORMAT == 4  # 4: the submitter column
    table = json.loads((tmp_path / "site" / "leaderboard.json").read_text())
    fixed = table["columns"][:len(aggregate.FIXED_COLUMNS)]
    start = fixed.index("utility_metric") + 1
    assert fixed[start:start + 11] == ["matched_metric", "matched_level", "matched_text", "utility_at_matched",
                                       "utility_at_matched_ci_low", "utility_at_matched_ci_high", "matched_status",
                                       "matched_rank", "curve", "forget_group", "utility_group"]
    frame = pd.read_parquet(tmp_path / "site" / "leaderboard.parquet")
    assert str(frame["matched_rank"].dtype) == "Int64" and frame["utility_at_matched"].dtype == "float64"
    unlearned = frame[frame.role == "unlearned"]
    # the synthetic grid has neither forget_prob on its retain row nor trajectories nor per-item files
    assert set(unlearned["matched_status"]) == {"no level"}
    assert unlearned["forget_group"].isna().all()
    assert frame[frame.role != "unlearned"]["matched_status"].isna().all()
