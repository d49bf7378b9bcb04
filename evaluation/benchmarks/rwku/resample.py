"""RWKU metrics over the per-item table (their `MetricInfo.from_items`): a level column is the
mean ROUGE-L recall of its probes and `forget_all` / `neighbor_all` the mean of the level columns;
the MIA columns are set means skipping NaN (a text too short for Min-K%++), the utility suites
means over their items. The evaluator reports them on every item, the bootstrap on resampled
items, each level or set drawn independently. Reads the level names from `data` (not the evaluator, which imports torch: the
leaderboard build must not)."""
from __future__ import annotations

import numpy as np

from evaluation.benchmarks import resampling
from evaluation.benchmarks.rwku import metrics as m
from evaluation.benchmarks.rwku.data import PROBE_FILES

LEVEL_SETS = {f"{group}_all": tuple(name for name in PROBE_FILES if name.startswith(f"{group}_level"))
              for group in ("forget", "neighbor")}


def level_from_items(eval_set: str):
    """The mean ROUGE-L recall of the probes of one level (`forget_level1`, ...)."""
    return resampling.mean_from_items(eval_set, "rougeL_recall")


def all_from_items(metric: str):
    """`forget_all` / `neighbor_all`: the mean of the group's level columns."""
    levels = LEVEL_SETS[metric]

    def from_items(table, draw, **context):
        return np.mean([resampling.set_mean(table, name, "rougeL_recall", draw) for name in levels], axis=0)
    return from_items


def mia_from_items(eval_set: str, column: str):
    """A MIA set mean (`forget_mia` / `retain_mia`), NaN items left out as the official loop does."""
    def from_items(table, draw, **context):
        values = resampling.values(table, eval_set, column)
        return np.asarray([m.set_mean(values[positions]) for positions in draw(eval_set, len(values))])
    return from_items
