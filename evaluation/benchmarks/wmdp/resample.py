"""WMDP / MMLU accuracies from item samples (`Benchmark.metric_from_items`). `forget_acc` is the
accuracy on the split's WMDP questions (`wmdp_<split>`); `mmlu` is lm-eval's size-weighted group
mean, i.e. the mean correctness over every MMLU question, resampled as one pool of questions."""
from __future__ import annotations

from evaluation.benchmarks import resampling

POOLS = {"mmlu": ("family", "mmlu"), "wmdp": ("family", "wmdp")}


def metric_from_items(benchmark, metric, table, draw, *, split, evaluator, references):
    if metric == "forget_acc":
        return resampling.set_mean(table, f"wmdp_{split}", "correct", draw)
    if metric in POOLS:
        column, value = POOLS[metric]
        pool = resampling.item_set(table, value, column).sort_values(["eval_set", "item_index"], kind="stable")
        correct = pool["correct"].to_numpy(dtype=float)
        return resampling.sample_mean(correct, draw(metric, len(correct)))
    if metric.startswith("wmdp_") and metric in set(table["eval_set"]):
        return resampling.set_mean(table, metric, "correct", draw)
    raise resampling.unknown_metric(benchmark, metric, ["forget_acc", "mmlu", "wmdp", "wmdp_<subset>"])
