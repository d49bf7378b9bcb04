"""RWKU's level-3 adversarial probes reported per probe type: which kind of attack prompt still
extracts the forgotten knowledge (RWKU §3: prefix injection, affirmative suffix, role play, reverse
query, synonym manipulation, context hint, in-context learning, multiple choice, cross lingual).

`forget_aa_<slug>` is the mean ROUGE-L recall of the target's level-3 probes of that type, from the
per-item table the evaluator writes (`probe_type` column), so `forget_aa` itself is unchanged. The
cross-lingual probes of every language (Spanish, French, German, ...) form one type; a type a split
has no probe of gets no metric. Cheap to import (no pandas, no torch): the metrics are declared here.
"""
from __future__ import annotations

from evaluation.benchmarks.rwku.data import CROSS_LINGUAL, LEVEL3_TYPES
from evaluation.metrics.declaration import LOWER, UNIT, MetricInfo

LEVEL3_SET = "forget_level3"
CROSS_LINGUAL_TYPE = "cross lingual"
PROBE_TYPES = (*sorted(LEVEL3_TYPES), CROSS_LINGUAL_TYPE)


def slug(probe_type: str) -> str:
    """`forget_aa_<slug>`'s slug of a level-3 probe type (every cross-lingual language: cross_lingual)."""
    base = CROSS_LINGUAL_TYPE if CROSS_LINGUAL.match(probe_type) else probe_type
    if base not in PROBE_TYPES:
        raise ValueError(f"unknown RWKU level-3 probe type {probe_type!r}; expected one of {list(PROBE_TYPES)} "
                         "(cross lingual with any language in parentheses)")
    return base.replace(" ", "_")


def metric_name(probe_type: str) -> str:
    return f"forget_aa_{slug(probe_type)}"


METRICS = tuple(MetricInfo(metric_name(t), LOWER, f"forget level 3 ROUGE-L recall of the {t!r} probes"
                           + (" (every language)" if t == CROSS_LINGUAL_TYPE else ""), UNIT)
                for t in PROBE_TYPES)


def per_type(table) -> tuple[dict[str, float], dict[str, dict[str, int]]]:
    """({forget_aa_<slug>: mean ROUGE-L recall}, {slug: {probe type as written: items}}) of the
    forget level-3 rows of an RWKU per-item table."""
    rows = table[table["eval_set"] == LEVEL3_SET]
    if rows.empty:
        return {}, {}
    if "probe_type" not in rows.columns:
        raise ValueError("the RWKU per-item table has no probe_type column; re-evaluate the model "
                         "(evaluation.benchmarks.rwku.evaluator writes it)")
    slugs = rows["probe_type"].map(slug)
    metrics = {f"forget_aa_{name}": float(scores.mean())
               for name, scores in rows["rougeL_recall"].groupby(slugs, sort=True)}
    counts = {name: {str(k): int(v) for k, v in group.value_counts(sort=False).sort_index().items()}
              for name, group in rows["probe_type"].groupby(slugs, sort=True)}
    return metrics, counts
