"""Does a published ordering of metrics hold on our numbers? Each check (config
`meta_eval.benchmarks.<b>.replication.checks`) compares one score of some metrics with the median of
that score over a comparison set, and is evaluated on the table's rows: holds true / false, or None
when a value is missing. Nothing here knows a benchmark; the claims are data in the config.
"""
from __future__ import annotations

import statistics
from typing import Any

SCORES = ("faithfulness", "Q", "R", "HM")
TESTS = {"at_or_above_median": lambda value, median: value >= median,
         "below_median": lambda value, median: value < median}


def score_of(row: dict[str, Any] | None, score: str) -> float | None:
    block = None if row is None else row.get(score)
    return None if not block else block.get("value")


def evaluate(check: dict[str, Any], rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One check: {claim, score, test, metrics, among} -> {claim, holds, detail}."""
    score, test = check["score"], check["test"]
    if score not in SCORES or test not in TESTS:
        raise ValueError(f"replication check {check.get('claim')!r}: score must be one of {SCORES} and test one "
                         f"of {sorted(TESTS)}, got {score!r} / {test!r}")
    among = {name: score_of(rows.get(name), score) for name in check["among"]}
    present = [v for v in among.values() if v is not None]
    values = {name: score_of(rows.get(name), score) for name in check["metrics"]}
    missing = sorted(name for name, value in values.items() if value is None)
    if not present or missing:
        return {"claim": check["claim"], "holds": None,
                "detail": f"{score} missing for {', '.join(missing) or 'the comparison set'}"}
    median = statistics.median(present)
    holds = all(TESTS[test](value, median) for value in values.values())
    shown = ", ".join(f"{name} {value:.3f}" for name, value in values.items())
    return {"claim": check["claim"], "holds": holds,
            "detail": f"{score}: {shown}; median over {len(present)} metrics {median:.3f} ({test.replace('_', ' ')})"}


def checks_for(replication: dict[str, Any] | None, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not replication:
        return None
    by_name = {row["metric"]: row for row in rows}
    return {"reference": replication["reference"],
            "checks": [evaluate(check, by_name) for check in replication["checks"]]}
