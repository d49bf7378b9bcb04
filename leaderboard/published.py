"""Published reference numbers (leaderboard/data/published.yaml), each row joined with its citation.

A row may carry `attacks`: attack label of ours (`<attack>-<variant>`, e.g. quantize-int4) -> the same
metrics as the row's `metrics`, measured after that attack. The labels and metric names must be ours
and the row's, so the numbers land in the board's attack columns (leaderboard/published_attacks.py).
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from methods.registry import ATTACKS

PUBLISHED_PATH = Path(__file__).with_name("data") / "published.yaml"
ROW_FIELDS = ("source", "benchmark", "split", "model", "label", "role", "method", "rectifier", "metrics")


def attack_labels() -> list[str]:
    """Every `<attack>-<variant>` our attacks declare, read from their source (nothing imported)."""
    return sorted(f"{name}-{variant}" for name in ATTACKS.names()
                  for variant in ATTACKS.class_literal(name, "variants"))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_attacks(row: dict[str, Any], where: str) -> dict[str, dict[str, float]]:
    """The row's `attacks` (absent: none), refused with `where` in the message unless every label is
    an attack of ours and every value a finite number of a metric the row itself reports."""
    attacks = row.get("attacks")
    if attacks is None:
        return {}
    if not isinstance(attacks, dict) or not attacks:
        raise ValueError(f"{where}.attacks must map attack labels (e.g. quantize-int4) to metrics; "
                         f"got {attacks!r} (omit the key for a row without attacks)")
    labels = attack_labels()
    for label, measured in attacks.items():
        if label not in labels:
            raise ValueError(f"{where}.attacks: {label!r} is not an attack of ours; use one of {', '.join(labels)}")
        if not isinstance(measured, dict) or not measured:
            raise ValueError(f"{where}.attacks.{label} must map metric names to numbers, got {measured!r}")
        for name, value in measured.items():
            if name not in row["metrics"]:
                raise ValueError(f"{where}.attacks.{label}.{name}: the row reports no {name!r} before the attack "
                                 f"(its metrics: {', '.join(row['metrics'])}), so the two cannot be compared")
            if not _finite(value):
                raise ValueError(f"{where}.attacks.{label}.{name} must be a finite number, got {value!r}")
    return attacks


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[dict[str, Any], ...]:
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    sources = {source["id"]: source for source in document["sources"]}
    rows = []
    for index, row in enumerate(document["rows"]):
        missing = [name for name in ROW_FIELDS if name not in row]
        if missing:
            raise ValueError(f"{path}: rows[{index}] lacks {', '.join(missing)}")
        if row["source"] not in sources:
            raise ValueError(f"{path}: rows[{index}].source {row['source']!r} is not a listed source")
        for name, value in row["metrics"].items():
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{path}: rows[{index}].metrics.{name} must be a finite number")
        where = (f"{path}: rows[{index}] ({row['source']} {row['benchmark']}/{row['split']} "
                 f"{row['model']} {row['label']!r})")
        attacks = check_attacks(row, where)
        source = sources[row["source"]]
        rows.append({**row, "attacks": attacks, "note": row.get("note"), "cite": source["cite"], "url": source["url"],
                     "source_title": source["title"], "protocol": source["protocol"],
                     "second_hand": bool(source["second_hand"])})
    return tuple(rows)


def load(path: str | Path = PUBLISHED_PATH) -> list[dict[str, Any]]:
    return [dict(row) for row in _load(str(path))]
