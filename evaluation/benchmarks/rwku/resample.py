"""RWKU headline metrics from item samples (`Benchmark.metric_from_items`): a level column is the
mean ROUGE-L recall of its probes and `forget_all` / `neighbor_all` the mean of the level columns
(`evaluator.evaluate`); each level is resampled independently. Reads the level names from `data`
(not the evaluator, which imports torch: the leaderboard build must not)."""
from __future__ import annotations

import numpy as np

from evaluation.benchmarks import resampling
from evaluation.benchmarks.rwku.data import PROBE_FILES

LEVEL_SETS = {f"{group}_all": tuple(name for name in PROBE_FILES if name.startswith(f"{group}_level"))
              for group in ("forget", "neighbor")}


def metric_from_items(benchmark, metric, table, draw, *, split, evaluator, references):
    if metric not in LEVEL_SETS:
        raise resampling.unknown_metric(benchmark, metric, LEVEL_SETS)
    levels = [resampling.set_mean(table, name, "rougeL_recall", draw) for name in LEVEL_SETS[metric]]
    return np.mean(levels, axis=0)
