"""Published reference numbers (leaderboard/data/published.yaml), each row joined with its citation."""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

PUBLISHED_PATH = Path(__file__).with_name("data") / "published.yaml"
ROW_FIELDS = ("source", "benchmark", "split", "model", "label", "role", "method", "rectifier", "metrics")


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
        source = sources[row["source"]]
        rows.append({**row, "note": row.get("note"), "cite": source["cite"], "url": source["url"],
                     "source_title": source["title"], "protocol": source["protocol"],
                     "second_hand": bool(source["second_hand"])})
    return tuple(rows)


def load(path: str | Path = PUBLISHED_PATH) -> list[dict[str, Any]]:
    return [dict(row) for row in _load(str(path))]
