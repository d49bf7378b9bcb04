"""metric_table.json of one benchmark: every declared metric × (faithfulness, Q, R, HM) with
bootstrap intervals over models, written atomically to <results>/meta_eval/<benchmark>/.

Spec (what the DAG passes, built from config `meta_eval.benchmarks.<b>`): `benchmark`, `split`,
`pools` {P, N: {description, members}}, `robustness` {quantize, relearn: attack labels},
`bootstrap` {samples, level, seed}.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from common import atomic
from leaderboard import headline
from leaderboard.attacks import knowledge_gain
from leaderboard.meta_eval import pools, replication, scores
from evaluation.metrics.declaration import HIGHER, LOWER

TABLE_NAME = "metric_table.json"
BOOTSTRAP = {"samples": 1000, "level": 0.95, "seed": 0}

DEFINITIONS = {
    "faithfulness": "AUC-ROC (sklearn roc_auc_score) of the metric separating pool P (holds the forget "
                    "knowledge, label 1) from pool N (never saw it, label 0). Orientation rule: each model is "
                    "scored by its distance from the value the metric's declared direction calls best "
                    "(-goodness: v for lower-is-better, -v for higher-is-better, |v| for closer-to-zero, "
                    "|v - 0.5| for closer-to-half), so P should score more knowledge; 1 = perfect separation, "
                    "0.5 = none, below 0.5 = the metric points the wrong way. A metric relative to a retain reference "
                    "(forget quality) is recomputed from per-item values against one common reference, the first "
                    "N model, which leaves N: against its own reference a retain model would score itself.",
    "Q": "Quantization robustness: per unlearned model min(k_unlearned / k_quantized, 1) on the knowledge level "
         "k (distance from the best end: v - lo for lower-is-better, hi - v for higher-is-better, |v| / "
         "|v - 0.5| for closer-to-zero / -half; None where that end is infinite); 1 when k_quantized is 0. "
         "This is open-unlearning's min(m_quantized / m_unlearned, 1) with m read as 'how forgotten': "
         "quantization that reveals knowledge lowers Q. Then the mean over models.",
    "R": "Relearning robustness (open-unlearning): per unlearned model min(Δ_retain / Δ_unlearn, 1), Δ = knowledge "
         "gained by the relearning attack (leaderboard.attacks.knowledge_gain for lower/higher-is-better metrics, "
         "the change of |v| / |v - 0.5| for closer-to-zero / -half ones), Δ_retain from the same model's retain "
         "reference under the same attack; leaderboard.attacks.relearn_ratio: Δ_unlearn ≤ 1e-6 gives 1, a "
         "negative ratio is clipped to 0. Then the mean over models. None without a retain reference.",
    "HM": "Harmonic mean of the metric's Q and R (means over models); 0 when either is 0.",
    "lower_is_better": "A lower-is-better metric (e.g. forget_prob) is its own knowledge level (k = v - lo); a "
                       "higher-is-better one (e.g. forget_truth_ratio, bounded by 1) uses k = hi - v, so Q and R "
                       "read every metric as 'knowledge present' whatever its declared direction.",
    "bootstrap": "Percentile intervals over models: P and N resampled with replacement for faithfulness, the "
                 "unlearned models for Q, R and HM (Q and R of a model drawn together).",
}


def _declarations(benchmark: str) -> list[Any]:
    found = headline.family_definition(benchmark)
    if found is None:
        raise ValueError(f"unknown benchmark {benchmark!r}: no declaration of its metrics (`ubench data list`)")
    return list(found.metrics)


def headline_metric(benchmark: str, available: set[str]) -> str | None:
    line = headline.headline(benchmark)
    return None if line is None else headline.pick(tuple(line.forget), available)


def _values(models: list[pools.Evaluated], name: str) -> list[float]:
    values = [m.metrics.get(name) for m in models]
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def self_referenced(models: list[pools.Evaluated], name: str) -> bool:
    """A metric relative to the retain reference (TOFU forget_quality, privleak) that a retain model
    scores against itself (FQ 1, privleak 0 by definition): not comparable across pool members."""
    for model in models:
        detail = model.details.get(name)
        if isinstance(detail, dict) and any(str(detail.get(key, "")).startswith("self")
                                            for key in ("retain_reference", "reference")):
            return True
    return False


def against_common_reference(holds, lacks, info, benchmark: str, split: str):
    """(P values, N values) of a self-referenced metric recomputed from each model's per-item table
    (`Benchmark.metric_from_items`, every item once) against ONE retain reference, the first N
    model, which then leaves N (against itself it is trivial); None when the benchmark cannot
    recompute the metric or a per-item table is missing."""
    import numpy as np
    import pandas as pd

    bench = headline.definition(benchmark)
    if bench is None or info.name not in bench.resampled_metrics() or len(lacks) < 2:
        return None
    reference, others = lacks[0], lacks[1:]
    if not all(model.per_item.is_file() for model in [reference, *holds, *others]):
        return None
    references = {"retain": pd.read_parquet(reference.per_item)}

    def every_item(_item_set: str, n: int):
        return np.arange(n)[None, :]

    def value(model) -> float:
        return float(bench.metric_from_items(info.name, pd.read_parquet(model.per_item), every_item, split=split,
                                             evaluator=model.evaluator, references=references)[0])
    try:
        return [value(model) for model in holds], [value(model) for model in others]
    except (ValueError, KeyError):
        return None


def gain(after: float | None, before: float | None, direction: str) -> float | None:
    """Knowledge brought back by an attack, in the metric's knowledge orientation."""
    if direction in (LOWER, HIGHER):
        return knowledge_gain(after, before, direction)
    if after is None or before is None:
        return None
    return scores.knowledge_score(after, direction) - scores.knowledge_score(before, direction)


def model_robustness(model: pools.Attacked, info: Any) -> tuple[float | None, float | None]:
    """(Q, R) of one unlearned model on one metric."""
    name, direction = info.name, info.better
    q = None
    unlearned = model.run.metrics.get(name)
    if model.quantized is not None and unlearned is not None and model.quantized.metrics.get(name) is not None:
        k_u = scores.knowledge_level(unlearned, direction, info.bounds)
        k_q = scores.knowledge_level(model.quantized.metrics[name], direction, info.bounds)
        q = scores.quantization_ratio(k_u, k_q)
    r = None
    if model.relearned is not None and model.retain_relearned is not None and model.retain_before is not None:
        retain_basis = pools.relearn_basis(model.retain_relearned, model.retain_before)
        r = scores.relearning_ratio(
            gain(model.retain_relearned.metrics.get(name), retain_basis.get(name), direction),
            gain(model.relearned.metrics.get(name), model.relearn_before.get(name), direction))
    return q, r


def _hm_of_means(rows) -> float | None:
    return scores.harmonic_mean(scores.mean_or_none([q for q, _ in rows]), scores.mean_or_none([r for _, r in rows]))


def metric_row(info: Any, holds, lacks, attacked, boot: dict[str, Any], is_headline: bool, offset: int,
               where: tuple[str, str]) -> dict[str, Any]:
    options = dict(samples=int(boot["samples"]), level=float(boot["level"]), seed=int(boot["seed"]) + offset)
    p, n = _values(holds, info.name), _values(lacks, info.name)
    row: dict[str, Any] = {"metric": info.name, "direction": info.better, "headline": is_headline}
    common = against_common_reference(holds, lacks, info, *where) if self_referenced(holds + lacks, info.name) else False
    if common is None:
        p, n = [], []
        row["faithfulness"] = scores.Interval(None, None, None).as_dict()
        row["note"] = ("relative to each model's own retain reference: a retain model is its own reference, "
                       "so pool members are not comparable, and it cannot be recomputed against a common one")
    else:
        if common:
            p, n = common
            row["note"] = ("recomputed from per-item values against one common retain reference (the first N "
                           "model, left out of N): against its own reference a retain model scores itself")
        row["faithfulness"] = scores.bootstrap_faithfulness(p, n, info.better, **options).as_dict()
    pairs = [model_robustness(model, info) for model in attacked]
    qs, rs = [q for q, _ in pairs], [r for _, r in pairs]
    q, r = scores.bootstrap_mean(qs, **options), scores.bootstrap_mean(rs, **options)
    both = [(a, b) for a, b in pairs if a is not None or b is not None]
    hm = scores.bootstrap_statistic(both, _hm_of_means, **options) if both else scores.Interval(None, None, None)
    row["Q"] = q.as_dict() if q.value is not None else None
    row["R"] = r.as_dict() if r.value is not None else None
    row["HM"] = hm.as_dict() if hm.value is not None else None
    row["n"] = {"faithfulness": len(p) + len(n), "P": len(p), "N": len(n),
                "Q": sum(v is not None for v in qs), "R": sum(v is not None for v in rs)}
    return row


def build(results: str | Path, spec: dict[str, Any]) -> dict[str, Any]:
    """The table of one benchmark from its evaluated pools and attacked runs (pure reading, no writing)."""
    benchmark, split = spec["benchmark"], spec["split"]
    boot = {**BOOTSTRAP, **spec.get("bootstrap", {})}
    results = Path(results)
    holds = pools.pool(results, benchmark, split, spec["pools"]["P"]["members"])
    lacks = pools.pool(results, benchmark, split, spec["pools"]["N"]["members"])
    labels = spec.get("robustness") or {}
    attacked = (pools.attacked_runs(results, benchmark, split, labels["quantize"], labels["relearn"])
                if labels else [])
    available = {name for model in holds + lacks for name in model.metrics}
    infos = [info for info in _declarations(benchmark) if info.name in available]
    main = headline_metric(benchmark, available)
    rows = [metric_row(info, holds, lacks, attacked, boot, info.name == main, index, (benchmark, split))
            for index, info in enumerate(infos)]
    table = {
        "benchmark": benchmark, "split": split,
        "pools": {name: {"models": len(models), "description": spec["pools"][name]["description"]}
                  for name, models in (("P", holds), ("N", lacks))},
        "robustness_models": len(attacked),
        "robustness_attacks": dict(labels),
        "bootstrap": {"samples": boot["samples"], "level": boot["level"], "seed": boot["seed"], "over": "models"},
        "definitions": DEFINITIONS,
        "metrics": rows,
    }
    checks = replication.checks_for(spec.get("replication"), rows)
    if checks is not None:
        table["replication"] = checks
    return table


def table_path(results: str | Path, benchmark: str) -> Path:
    return Path(results) / "meta_eval" / benchmark / TABLE_NAME


def write(results: str | Path, spec: dict[str, Any], out: str | Path | None = None) -> Path:
    """Build and write the table in one atomic step (a killed job leaves no half-written file)."""
    table = build(results, spec)
    return atomic.write_json(out or table_path(results, spec["benchmark"]), table)
