"""MUSE headline metrics over the per-item table (their `MetricInfo.from_items`): VerbMem / KnowMem
are the mean ROUGE-L F1 of their item set times the variant's scale (100 official, 1 OU); the
evaluator reports them on every item, the bootstrap on resampled items."""
from __future__ import annotations

from evaluation.benchmarks import resampling

ROUGE_SETS = ("verbmem_forget", "knowmem_forget", "knowmem_retain")


def rouge_from_items(eval_set: str):
    """The scaled mean ROUGE-L F1 of item set `eval_set` (one of ROUGE_SETS); the scale is read from
    the evaluator block."""
    if eval_set not in ROUGE_SETS:
        raise ValueError(f"MUSE has no ROUGE item set {eval_set!r}; sets: {', '.join(ROUGE_SETS)}")

    def from_items(table, draw, *, evaluator, **context):
        scale = evaluator.get("scale")
        if scale is None:
            raise ValueError(f"muse: the evaluator block has no `scale` (100 or 1) for {eval_set}; re-evaluate the model")
        return resampling.set_mean(table, eval_set, "rougeL_f1", draw) * float(scale)
    return from_items
