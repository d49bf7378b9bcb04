"""Shared pieces of the metrics' `from_items` functions (`MetricInfo.from_items`): an item set's
values in a fixed item order, their mean over drawn item samples, and the identity draw through which
an evaluator reports a metric. Cheap to import (numpy only): benchmark modules hook it in."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

Draw = Callable[[str, int], np.ndarray]


def item_set(table, eval_set: str, column: str = "eval_set"):
    """The rows of one item set in item order (item_index), so position i is the same item in every
    model's table. Raises ValueError naming the set when the table has none of it."""
    part = table[table[column] == eval_set]
    if part.empty:
        present = sorted(str(v) for v in table[column].unique())
        raise ValueError(f"per-item table has no {eval_set!r} items (sets present: {', '.join(present)}); "
                         "re-evaluate the model with the benchmark's evaluator")
    return part.sort_values("item_index", kind="stable")


def values(table, eval_set: str, value_column: str, column: str = "eval_set") -> np.ndarray:
    part = item_set(table, eval_set, column)
    if value_column not in part:
        raise ValueError(f"per-item table has no {value_column!r} column for the {eval_set!r} items")
    return part[value_column].to_numpy(dtype=np.float64)


def sample_mean(item_values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Mean over each drawn sample: (samples, n) positions -> (samples,) means."""
    return item_values[positions].mean(axis=1)


def set_mean(table, eval_set: str, value_column: str, draw: Draw, column: str = "eval_set") -> np.ndarray:
    item_values = values(table, eval_set, value_column, column)
    return sample_mean(item_values, draw(eval_set, len(item_values)))


def mean_from_items(eval_set: str, value_column: str, column: str = "eval_set"):
    """A `from_items` function: the mean of `value_column` over item set `eval_set`."""
    def from_items(table, draw, **context) -> np.ndarray:
        return set_mean(table, eval_set, value_column, draw, column)
    return from_items


def identity(item_set: str, n: int) -> np.ndarray:
    """One sample holding every item once, in order: the draw whose value is the reported one."""
    return np.arange(n)[None, :]


def full_value(info: Any, table, *, split: str, evaluator: dict[str, Any], references: dict[str, Any]) -> float:
    """What an evaluation reports for metric `info` (a MetricInfo with `from_items`): its declared
    function on the identity draw, so the evaluator and the bootstrap share one computation."""
    return float(info.from_items(table, identity, split=split, evaluator=evaluator, references=references)[0])


def unknown_metric(benchmark: Any, metric: str, known) -> ValueError:
    return ValueError(f"{benchmark.name}: no per-item recomputation of {metric!r}; "
                      f"recomputable: {', '.join(sorted(known))}")
