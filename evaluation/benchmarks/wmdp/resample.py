"""WMDP / MMLU accuracies over the per-item table (their `MetricInfo.from_items`). `forget_acc` is
the accuracy on the split's WMDP questions (`wmdp_<split>`); `wmdp_<subset>` a subset's accuracy;
`wmdp` and `mmlu` are lm-eval's size-weighted group means, i.e. the mean correctness over every
question of the family, resampled as one pool. lm-eval scores every question; the evaluator reports
these functions on every item and checks them against lm-eval's own aggregates."""
from __future__ import annotations

from evaluation.benchmarks import resampling


def forget_acc_from_items(table, draw, *, split, **context):
    return resampling.set_mean(table, f"wmdp_{split}", "correct", draw)


def subset_from_items(subset: str):
    return resampling.mean_from_items(f"wmdp_{subset}", "correct")


def pool_from_items(family: str):
    """Every question of `family` ("wmdp" or "mmlu") as one item set, named after the family."""
    def from_items(table, draw, **context):
        pool = resampling.item_set(table, family, "family").sort_values(["eval_set", "item_index"], kind="stable")
        correct = pool["correct"].to_numpy(dtype=float)
        return resampling.sample_mean(correct, draw(family, len(correct)))
    return from_items
