"""Utility at matched forgetting: each run's utility at the first point of its training trajectory
where the benchmark's matched metric reaches the forgetting level (`MatchedLevel`, interface I0).

A seed's curve is step 0 (the target model's values, from the target row of the same benchmark,
split, model and evaluator variant; left out when there is no target row) followed by the
`trajectory.points` of its metrics.json (interface I1). Along the curve, the first point whose
matched metric reaches the level is the crossing; the utility there is interpolated linearly in
the matched metric between that point and the one before it (the same as interpolating linearly
in step on the piecewise-linear curve). A crossing at step 0 gives the target's utility.

Decisions (docs/architecture.md, leaderboard): a row without any trajectory is "no trajectory"
even when its final metrics reach the level: one endpoint says nothing about the utility at the
level, only at the end of training. A seed without a trajectory (a diverged seed has none) counts
as not reaching, so "reached k/n seeds" counts over all n seeds of the row; utility_at_matched is
the mean (and t-interval) over the seeds that reached.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from leaderboard import headline
from leaderboard.stats import mean_interval

REACHED, NOT_REACHED, NO_TRAJECTORY, NO_LEVEL = "reached", "not reached", "no trajectory", "no level"


@dataclass(frozen=True)
class Point:
    step: float
    matched: float
    utility: float


def reaches(value: float, level: float, direction: str) -> bool:
    """At least as forgotten as the level: lower-is-better metrics at or below it, higher at or above."""
    if direction == headline.LOWER:
        return value <= level
    if direction == headline.HIGHER:
        return value >= level
    raise ValueError(f"a matched metric must be lower- or higher-is-better, not {direction!r}")


def crossing(points: list[Point], level: float, direction: str) -> tuple[float, float] | None:
    """(step, utility) at the first crossing of `level` along `points` (ascending step); None if never."""
    for i, point in enumerate(points):
        if not reaches(point.matched, level, direction):
            continue
        if i == 0:
            return point.step, point.utility
        before = points[i - 1]  # does not reach, so before.matched != point.matched
        t = (level - before.matched) / (point.matched - before.matched)
        return (before.step + t * (point.step - before.step),
                before.utility + t * (point.utility - before.utility))
    return None


def level_value(spec, reference_value: float | None) -> float | None:
    """The level: the fixed value, or scale × the reference model's value + offset (None without it)."""
    if spec.value is not None:
        return float(spec.value)
    if reference_value is None:
        return None
    return spec.scale * reference_value + spec.offset


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def seed_points(start: dict[str, float] | None, document: dict[str, Any],
                names: tuple[str, ...]) -> list[tuple[float, ...]] | None:
    """[(step, value of names[0], value of names[1], ...)] of one seed: step 0 from `start` (the
    target row's metrics) when given, then the trajectory points; points missing any value are left
    out. None when the seed has no trajectory block."""
    trajectory = document.get("trajectory")
    if not isinstance(trajectory, dict) or not trajectory.get("points"):
        return None
    points = []
    if start is not None:
        points.append((0.0, *(_number(start.get(name)) for name in names)))
    for point in trajectory["points"]:
        metrics = point.get("metrics", {})
        points.append((float(point["step"]), *(_number(metrics.get(name)) for name in names)))
    return [p for p in points if all(v is not None for v in p[1:])]


def status_text(reached: int, with_level: int) -> str:
    if reached == with_level:
        return REACHED
    if reached == 0:
        return NOT_REACHED
    return f"reached {reached}/{with_level} seeds"


def mean_curve(curves: Iterable[list[tuple[float, ...]]]) -> str | None:
    """JSON [[step, forget, utility(, matched)], ...]: per step, the mean of each value over the
    seeds that have that step."""
    by_step: dict[float, list[tuple[float, ...]]] = {}
    for curve in curves:
        for step, *values in curve:
            by_step.setdefault(step, []).append(tuple(values))
    if not by_step:
        return None
    rows = []
    for step in sorted(by_step):
        values = by_step[step]
        rows.append([int(step) if float(step).is_integer() else step,
                     *(sum(v[i] for v in values) / len(values) for i in range(len(values[0])))])
    return json.dumps(rows, separators=(",", ":"))


def row_columns(row: dict[str, Any], seeds: list[dict[str, Any]], spec,
                reference_value: float | None, target: dict[str, float] | None) -> dict[str, Any]:
    """The I2 matched columns of one row. `spec` is the benchmark's MatchedLevel (or None),
    `reference_value` the reference row's mean of spec.metric, `target` the target row's mean
    metrics (step 0) or None."""
    out: dict[str, Any] = {"matched_metric": None, "matched_level": None, "matched_text": None,
                           "utility_at_matched": None, "utility_at_matched_ci_low": None,
                           "utility_at_matched_ci_high": None, "matched_status": None,
                           "matched_rank": None, "curve": None}
    if spec is not None:
        out.update(matched_metric=spec.metric, matched_text=spec.text or None,
                   matched_level=level_value(spec, reference_value))
    if row["role"] != "unlearned":
        return out
    forget, utility = row["forget_metric"], row["utility_metric"]
    if forget is not None and utility is not None:
        # a fourth value, the matched metric, when it is not the forget axis (TOFU: forget_prob), so
        # the page can draw the curve against the level it is matched on
        names = (forget, utility) + ((spec.metric,) if spec is not None and spec.metric != forget else ())
        curves = [seed_points(target, d, names) for d in seeds]
        out["curve"] = mean_curve(c for c in curves if c)
    if spec is None or out["matched_level"] is None or utility is None:
        out["matched_status"] = NO_LEVEL
        return out
    direction = headline.metric_direction(spec.metric)
    if direction not in (headline.LOWER, headline.HIGHER):
        out["matched_status"] = NO_LEVEL  # no forgetting direction known for the matched metric
        return out
    seed_curves = [seed_points(target, d, (spec.metric, utility)) for d in seeds]
    if all(c is None for c in seed_curves):
        out["matched_status"] = NO_TRAJECTORY
        return out
    utilities = []
    for curve in seed_curves:
        found = crossing([Point(*p) for p in curve or []], out["matched_level"], direction)
        if found is not None:
            utilities.append(found[1])
    out["matched_status"] = status_text(len(utilities), len(seeds))
    if utilities:
        mean, low, high = mean_interval(utilities)
        out.update(utility_at_matched=mean, utility_at_matched_ci_low=low, utility_at_matched_ci_high=high)
    return out


def rank(rows: list[dict[str, Any]]) -> None:
    """matched_rank = 1 + the number of rows with strictly better utility_at_matched, among the
    given rows (one RANK_GROUP's comparable unlearned rows) whose status is "reached"."""
    reached = [r for r in rows if r["matched_status"] == REACHED and r["utility_at_matched"] is not None]
    for row in reached:
        direction = headline.metric_direction(row["utility_metric"]) or headline.HIGHER
        mine = headline.goodness(row["utility_at_matched"], direction)
        row["matched_rank"] = 1 + sum(
            headline.goodness(other["utility_at_matched"], direction) > mine for other in reached)
