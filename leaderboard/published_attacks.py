"""Attack columns for published rows: a paper's numbers after an attack (published.yaml `attacks`)
in the same columns our rows get from their attack runs (leaderboard/attacks.py).

Per published row with `attacks`, per attack label (`<attack>-<variant>`, e.g. quantize-int4):

- `attack:<label>:<metric>`: the published value of each metric after the attack, and
  `attack:<label>:status` ok (a published row lists only the attacks it reports);
- `attack:<label>:recovery`: attacks.recovery of the benchmark's knowledge metric,
  (m_attacked − m_unlearned) / (m_target − m_unlearned), m_target the unattacked published target
  row of the same source, benchmark, split and model: a paper's attacked numbers are set against its
  own target, never another source's. None without such a target, on the target itself, or where the
  row did not move the metric.

And per such row `knowledge_metric`, `worst_case_knowledge`, `worst_case_attack` and `undone_by`,
from attacks.worst_case and attacks.undone_by. A published number is one value, so there are no
intervals, and no relearning ratio R (no published row reports a relearning attack yet).
"""
from __future__ import annotations

from typing import Any

from leaderboard import attacks, headline

SAME_TARGET = ("source", "benchmark", "split", "model")  # the published target a row's recovery uses


def _key(row: dict[str, Any]) -> tuple:
    return tuple(row[name] for name in SAME_TARGET)


def _target(row: dict[str, Any], targets: dict[tuple, list[dict[str, Any]]]) -> dict[str, Any] | None:
    found = targets.get(_key(row), [])
    if len(found) > 1:
        raise ValueError(f"published row {row['label']!r} ({', '.join(map(str, _key(row)))}) has attacks but "
                         f"{len(found)} target rows share its source, benchmark, split and model; keep one, "
                         "so its recovery has one reference")
    return found[0] if found else None


def attack_columns(row: dict[str, Any], target: dict[str, Any] | None) -> dict[str, Any]:
    """The attack columns of one published row with `attacks` (module docstring)."""
    knowledge = attacks.knowledge_metric(row["benchmark"])
    direction = headline.metric_direction(knowledge) if knowledge else None
    before = row["metrics"].get(knowledge)
    reference = None if target is None else target["metrics"].get(knowledge)
    columns: dict[str, Any] = {"knowledge_metric": knowledge}
    knowledge_after, recoveries = [], []
    for label, measured in sorted(row["attacks"].items()):
        columns[f"attack:{label}:status"] = "ok"
        columns.update({f"attack:{label}:{metric}": value for metric, value in measured.items()})
        if knowledge is None:
            continue
        value = measured.get(knowledge)
        columns[f"attack:{label}:recovery"] = attacks.recovery(value, before, reference)
        knowledge_after.append((label, value))
        recoveries.append((label, columns[f"attack:{label}:recovery"]))
    columns["worst_case_knowledge"], columns["worst_case_attack"] = attacks.worst_case(
        before, knowledge_after, direction)
    columns["undone_by"] = attacks.undone_by(recoveries)
    return columns


def with_attack_columns(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` (published.load()) in order, each with attacks extended by its attack columns."""
    targets: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        if row["role"] == "target":
            targets.setdefault(_key(row), []).append(row)
    return [{**row, **attack_columns(row, _target(row, targets))} if row.get("attacks") else dict(row)
            for row in rows]
