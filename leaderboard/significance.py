"""Significance groups: a paired per-item bootstrap of each headline metric over the rows of one
rank group (evaluated on the same items), then a compact letter display of "not significantly
different".

Only metrics the benchmark declares `resampled` (`MetricInfo.resampled`) get groups. For each item
set the benchmark draws from (`Benchmark.metric_from_items`), SAMPLES samples of
item positions are drawn once per rank group from a fixed seed, and every row and seed of the
group is recomputed on those same positions: the bootstrap is paired. A row's value per sample is
the mean over its seeds of the recomputed metric (the bootstrap of the seed mean). Two rows
differ significantly when the 95% percentile interval of their per-sample difference excludes 0.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np

from leaderboard import headline
from leaderboard.letters import compact_letters

SAMPLES = 1000
SEED = 20240614
CONFIDENCE = 0.95
PER_ITEM_FILE = "per_item.parquet"


class ItemSetMismatch(ValueError):
    pass


class PairedDraws:
    """`draw(item_set, n)`: the same (SAMPLES, n) positions for every caller; each set drawn
    independently from a generator seeded by SEED and the set's name (order of calls is irrelevant)."""

    def __init__(self, samples: int = SAMPLES, seed: int = SEED):
        self.samples, self.seed = samples, seed
        self._drawn: dict[str, np.ndarray] = {}

    def __call__(self, item_set: str, n: int) -> np.ndarray:
        drawn = self._drawn.get(item_set)
        if drawn is None:
            rng = np.random.default_rng([self.seed, zlib.crc32(item_set.encode())])
            drawn = self._drawn[item_set] = rng.integers(0, n, size=(self.samples, n))
        elif drawn.shape[1] != n:
            raise ItemSetMismatch(f"item set {item_set!r} has {n} items here but {drawn.shape[1]} in "
                                  "another row of the comparison; rows must be evaluated on the same items")
        return drawn


def significantly_different(values: np.ndarray, confidence: float = CONFIDENCE) -> np.ndarray:
    """(rows, samples) bootstrap values -> (rows, rows) bool: the percentile interval of the paired
    difference excludes 0."""
    tail = (1 - confidence) / 2
    result = np.zeros((len(values), len(values)), dtype=bool)
    for i in range(len(values)):
        low, high = np.quantile(values[i] - values, [tail, 1 - tail], axis=1)
        result[i] = (low > 0) | (high < 0)
    return result


def groups(order: list[str], values: np.ndarray) -> dict[str, str]:
    """Row id -> letters, rows given best first with their (rows, samples) bootstrap values."""
    different = significantly_different(values)
    pairs = [(order[i], order[j]) for i in range(len(order)) for j in range(i + 1, len(order)) if different[i, j]]
    return compact_letters(order, pairs)


class TableCache:
    """Per-item tables read once per build (None for a missing file)."""

    def __init__(self):
        self._tables: dict[Path, Any] = {}

    def get(self, folder: Path):
        path = Path(folder) / PER_ITEM_FILE
        if path not in self._tables:
            import pandas as pd

            self._tables[path] = pd.read_parquet(path) if path.is_file() else None
        return self._tables[path]


def seed_mean_samples(definition, metric: str, seeds: list[tuple[Path, dict[str, Any]]],
                      references: dict[str, Any], draw: PairedDraws, tables: TableCache) -> np.ndarray | None:
    """(SAMPLES,) bootstrap values of the seed mean of `metric`; None when a seed has no per-item
    table or the benchmark cannot recompute the metric from it."""
    per_seed = []
    for path, document in seeds:
        table = tables.get(path.parent)
        if table is None:
            return None
        try:
            values = definition.metric_from_items(metric, table, draw, split=document["identity"]["split"],
                                                  evaluator=document["evaluator"], references=references)
        except (NotImplementedError, ValueError):  # also ItemSetMismatch
            return None
        per_seed.append(np.asarray(values, dtype=np.float64))
    values = np.mean(per_seed, axis=0)
    return values if np.all(np.isfinite(values)) else None


def annotate_group(definition, rows: list[dict[str, Any]], seeds_of: dict[str, list[tuple[Path, dict]]],
                   references: dict[str, Any], tables: TableCache) -> None:
    """Set forget_group / utility_group on the given rows of one rank group (others stay None)."""
    resampled = definition.resampled_metrics()
    for kind in ("forget", "utility"):
        by_metric: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if row[f"{kind}_metric"] is not None:
                by_metric.setdefault(row[f"{kind}_metric"], []).append(row)
        for metric, members in by_metric.items():
            direction = headline.metric_direction(metric)
            if direction is None or metric not in resampled:
                continue
            draw = PairedDraws()
            found = {}
            for row in members:
                values = seed_mean_samples(definition, metric, seeds_of[row["row_id"]], references, draw, tables)
                if values is not None:
                    found[row["row_id"]] = (headline.goodness(row[f"metric:{metric}"], direction), values)
            order = sorted(found, key=lambda rid: (-found[rid][0], rid))
            if not order:
                continue
            letters = groups(order, np.stack([found[rid][1] for rid in order]))
            for row in members:
                row[f"{kind}_group"] = letters.get(row["row_id"])
