"""RWKU's level-3 adversarial probes reported per probe type: which kind of attack prompt still
extracts the forgotten knowledge (RWKU §3: prefix injection, affirmative suffix, role play, reverse
query, synonym manipulation, context hint, in-context learning, multiple choice, cross lingual).

`forget_aa_<slug>` is the mean ROUGE-L recall of the target's level-3 probes of that type, from the
per-item table the evaluator writes (`probe_type` column), so `forget_aa` itself is unchanged. The
cross-lingual probes of every language (Spanish, French, German, ...) form one type; a type a split
has no probe of gets no metric. Each is declared with its `from_items` (the evaluator reports it on
every item, the leaderboard's bootstrap on resampled ones). Cheap to import (no pandas, no torch).
"""
from __future__ import annotations

import numpy as np

from evaluation.benchmarks import resampling
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


def _type_rows(table):
    rows = resampling.item_set(table, LEVEL3_SET)
    if "probe_type" not in rows.columns:
        raise ValueError("the RWKU per-item table has no probe_type column; re-evaluate the model "
                         "(evaluation.benchmarks.rwku.evaluator writes it)")
    return rows, rows["probe_type"].map(slug)


def type_from_items(probe_type: str):
    """The mean ROUGE-L recall of the level-3 probes of one type (items drawn within the type)."""
    wanted = slug(probe_type)

    def from_items(table, draw, **context) -> np.ndarray:
        rows, slugs = _type_rows(table)
        values = rows.loc[slugs == wanted, "rougeL_recall"].to_numpy(dtype=np.float64)
        if not len(values):
            raise ValueError(f"the per-item table has no {probe_type!r} level-3 probes")
        return resampling.sample_mean(values, draw(f"{LEVEL3_SET}:{wanted}", len(values)))
    return from_items


METRICS = tuple(MetricInfo(metric_name(t), LOWER, f"forget level 3 ROUGE-L recall of the {t!r} probes"
                           + (" (every language)" if t == CROSS_LINGUAL_TYPE else ""), UNIT,
                           from_items=type_from_items(t))
                for t in PROBE_TYPES)


def per_type(table) -> tuple[dict[str, float], dict[str, dict[str, int]]]:
    """({forget_aa_<slug>: mean ROUGE-L recall}, {slug: {probe type as written: items}}) of the
    forget level-3 rows of an RWKU per-item table, each value through its declared `from_items`."""
    if not (table["eval_set"] == LEVEL3_SET).any():
        return {}, {}
    rows, slugs = _type_rows(table)
    present = set(slugs)
    metrics = {info.name: resampling.full_value(info, table, split="", evaluator={}, references={})
               for info in METRICS if info.name.removeprefix("forget_aa_") in present}
    counts = {name: {str(k): int(v) for k, v in group.value_counts(sort=False).sort_index().items()}
              for name, group in rows["probe_type"].groupby(slugs, sort=True)}
    return metrics, counts
