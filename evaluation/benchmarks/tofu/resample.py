"""TOFU metrics over the per-item table (their `MetricInfo.from_items`, metrics.md §1.3): the
evaluator (`evaluator.aggregate`) reports each on every item, the bootstrap on resampled items:

- `<set>_prob`, `<set>_rouge`, `<set>_truth_ratio` for set forget / retain / ra / wf: means over one
  item sample (RA / WF probabilities are the with-options ones; the forget truth ratio is
  mean min(R, 1/R), the others mean max(0, 1 - R));
- `model_utility`: harmonic mean of the nine retain / RA / WF values (0 when any is 0), each of the
  three sets drawn independently;
- `extraction_strength`, `exact_memorization`: means over the forget set;
- `mia_<attack>_auc`: AUC of the attack's per-item scores, forget (members) against holdout, each
  set drawn independently; `privleak` that of Min-K relative to the retain model's AUC on its full
  sets (held fixed, as for forget quality), or OU's fallback 0.5 without a retain model;
- `forget_quality`: p-value of the two-sided KS test of the sampled forget truth ratios against the
  retain model's forget truth ratios. The retain model's values are held FIXED (its full set, not
  resampled): forget quality is defined against one reference model, and the bootstrap measures
  how much the unlearned model's own number moves with the item sample, as its paired difference
  to another unlearned model does.

The KS statistic of every sample is computed at once from ranks in the pooled values; its p-value
depends only on (statistic, n, m), so scipy's `ks_2samp` runs once per distinct statistic.
"""
from __future__ import annotations

import numpy as np

from evaluation.benchmarks import resampling

SETS = ("forget", "retain", "ra", "wf")
UTILITY_SETS = ("retain", "ra", "wf")
KINDS = ("prob", "rouge", "truth_ratio")
COMPONENTS = tuple(f"{s}_{k}" for s in SETS for k in KINDS)


def _component(table, name: str, draw) -> np.ndarray:
    eval_set, kind = name.split("_", 1)
    if kind == "prob":
        return resampling.set_mean(table, eval_set, "prob_options" if eval_set in ("ra", "wf") else "prob", draw)
    if kind == "rouge":
        return resampling.set_mean(table, eval_set, "rougeL_recall", draw)
    ratios = resampling.values(table, eval_set, "truth_ratio")
    per_item = np.minimum(ratios, 1.0 / ratios) if eval_set == "forget" else np.maximum(0.0, 1.0 - ratios)
    return resampling.sample_mean(per_item, draw(eval_set, len(per_item)))


def harmonic_mean_or_zero(components: np.ndarray) -> np.ndarray:
    """(k, samples) -> (samples,): 1 / mean(1/x) per sample, 0 where any component is <= 0. Each
    sample's mean runs over one contiguous row, as scipy's `hmean` of the k values does, so the
    full item set gives the number scipy gives."""
    positive = np.all(components > 0, axis=0)
    safe = np.where(components > 0, components, 1.0)
    reciprocal_rows = np.ascontiguousarray((1.0 / safe).T)
    return np.where(positive, 1.0 / np.mean(reciprocal_rows, axis=1), 0.0)


def ks_statistics(sample: np.ndarray, positions: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Two-sample KS numerators max_x |m·count_sample(<=x) - n·count_reference(<=x)| (statistic
    times n·m, exact integers) for every drawn sample of `sample` against the fixed `reference`."""
    n, m = positions.shape[1], len(reference)
    grid = np.unique(np.concatenate([sample, reference]))
    size = len(grid)
    sample_rank = np.searchsorted(grid, sample)[positions]                       # (samples, n)
    rows = np.arange(positions.shape[0])[:, None] * size
    counts = np.bincount((rows + sample_rank).ravel(), minlength=positions.shape[0] * size)
    cumulative = np.cumsum(counts.reshape(positions.shape[0], size), axis=1)
    reference_cumulative = np.cumsum(np.bincount(np.searchsorted(grid, reference), minlength=size))
    return np.max(np.abs(cumulative * m - reference_cumulative * n), axis=1)


_PVALUES: dict[tuple[int, int, int], float] = {}  # (n, m, statistic × n·m) -> p-value, across calls


def forget_quality(sample: np.ndarray, positions: np.ndarray, reference: np.ndarray) -> np.ndarray:
    from scipy import stats

    statistics = ks_statistics(sample, positions, reference)
    n, m = positions.shape[1], len(reference)
    pvalues = np.empty(len(statistics))
    for value in np.unique(statistics):
        where = np.flatnonzero(statistics == value)
        key = (n, m, int(value))
        if key not in _PVALUES:
            # scipy's p-value is a function of (statistic, n, m): one test per distinct statistic
            _PVALUES[key] = float(stats.ks_2samp(sample[positions[where[0]]], reference).pvalue)
        pvalues[where] = _PVALUES[key]
    return pvalues


def _retain_forget_ratios(table, references) -> np.ndarray:
    retain = references.get("retain")
    if retain is None:
        raise ValueError("forget quality needs the retain model's per-item table (reference/retain/per_item.parquet)")
    mine, theirs = resampling.item_set(table, "forget"), resampling.item_set(retain, "forget")
    if mine["question"].tolist() != theirs["question"].tolist():
        raise ValueError("the retain model's per-item table covers other forget questions; evaluate both "
                         "models on the same split with the same evaluator variant")
    return theirs["truth_ratio"].to_numpy(dtype=np.float64)


def component_from_items(name: str):
    """`<set>_<kind>` (one of COMPONENTS) over the per-item table."""
    if name not in COMPONENTS:
        raise ValueError(f"TOFU has no component {name!r}; components: {', '.join(COMPONENTS)}")

    def from_items(table, draw, **context) -> np.ndarray:
        return _component(table, name, draw)
    return from_items


def model_utility_from_items(table, draw, **context) -> np.ndarray:
    names = [f"{s}_{k}" for s in UTILITY_SETS for k in KINDS]
    return harmonic_mean_or_zero(np.stack([_component(table, name, draw) for name in names]))


def forget_quality_from_items(table, draw, *, references, **context) -> np.ndarray:
    reference = _retain_forget_ratios(table, references)
    sample = resampling.values(table, "forget", "truth_ratio")
    if not (np.all(np.isfinite(sample)) and np.all(np.isfinite(reference))):
        raise ValueError("forget truth ratios must be finite for the KS test")
    return forget_quality(sample, draw("forget", len(sample)), reference)



def mia_auc_from_items(attack: str):
    """`mia_<attack>_auc`: the AUC of per-item `mia_<attack>` scores, forget = 0 vs holdout = 1."""
    column = f"mia_{attack}"

    def from_items(table, draw, **context) -> np.ndarray:
        from evaluation.metrics import mia  # sklearn: only where an AUC is computed

        forget, holdout = resampling.values(table, "forget", column), resampling.values(table, "holdout", column)
        pairs = zip(draw("forget", len(forget)), draw("holdout", len(holdout)))
        return np.asarray([mia.auc(forget[f], holdout[h]) for f, h in pairs])
    return from_items


def privleak_from_items(table, draw, *, references, **context) -> np.ndarray:
    from evaluation.metrics import mia

    retain = references.get("retain")
    reference = (mia.FALLBACK_REFERENCE_AUC if retain is None
                 else float(mia_auc_from_items("mink")(retain, resampling.identity)[0]))
    return np.asarray([mia.privleak(float(auc), reference) for auc in mia_auc_from_items("mink")(table, draw)])
