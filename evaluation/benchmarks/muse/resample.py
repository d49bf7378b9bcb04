"""MUSE headline metrics from item samples (`Benchmark.metric_from_items`): VerbMem / KnowMem are
the mean ROUGE-L F1 of their item set times the variant's scale (100 official, 1 OU), exactly as
`evaluator.aggregate` computes them from the full set."""
from __future__ import annotations

from evaluation.benchmarks import resampling

ROUGE_SETS = ("verbmem_forget", "knowmem_forget", "knowmem_retain")


def metric_from_items(benchmark, metric, table, draw, *, split, evaluator, references):
    if metric not in ROUGE_SETS:
        raise resampling.unknown_metric(benchmark, metric, ROUGE_SETS)
    scale = evaluator.get("scale")
    if scale is None:
        raise ValueError(f"{benchmark.name}: the evaluator block has no `scale` (100 or 1); re-evaluate the model")
    return resampling.set_mean(table, metric, "rougeL_f1", draw) * float(scale)
