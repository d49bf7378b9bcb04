"""Synthetic leaderboard rows of table format 3 (the issue-14 columns), for page tests.

Rows are written straight into a page (leaderboard.page.write_page), not aggregated from
metrics.json, so the page can be tested at any size and before the aggregation produces these
columns. Every column follows the I2 contract: matched_* describe the benchmark's matched
forgetting level, utility_at_matched(+interval) is None unless some seed reached it, `curve` is
JSON text [[step, forget, utility], ...] with step 0 = the target row, and the significance
groups are compact letters among the comparable unlearned rows of one rank group.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from leaderboard import aggregate, page

I2_COLUMNS = ("matched_metric", "matched_level", "matched_text", "utility_at_matched",
              "utility_at_matched_ci_low", "utility_at_matched_ci_high", "matched_status",
              "matched_rank", "curve", "forget_group", "utility_group")
METHODS = ("ga", "graddiff", "npo", "simnpo", "rmu", "wga")
RECTIFIERS = ("none", "gru", "pcgrad", "sago")
PARAMETRIZATIONS = ("full", "lora")
STATUSES = ("reached", "reached", "reached", "reached 1/2 seeds", "not reached", "no trajectory")
# benchmark -> (forget metric, utility metric, matched metric, matched text, target forget/utility)
BENCHMARKS = {
    "tofu-tiny": ("forget_quality", "model_utility", "forget_prob",
                  "the retain model's forget probability", (1e-5, 0.62)),
    "muse-tiny": ("knowmem_forget", "knowmem_retain", "knowmem_forget",
                  "the retrained model's KnowMem on the forget set", (0.60, 0.55)),
}
STEPS = (10, 20, 30, 40, 50)


def _columns() -> list[str]:
    fixed = list(aggregate.FIXED_COLUMNS)
    anchor = fixed.index("utility_metric") + 1
    new = [c for c in I2_COLUMNS if c not in fixed]
    return fixed[:anchor] + new + fixed[anchor:]


def _base(benchmark: str, split: str, model: str, role: str, method: str, rectifier: str,
          parametrization: str, hp: int) -> dict[str, Any]:
    forget, utility, matched, text, _ = BENCHMARKS[benchmark]
    what = f"reference/{role}" if role != "unlearned" else f"{method}+{rectifier}+{parametrization}"
    return {
        "row_id": f"{benchmark}/{split}/{model}/{what}/ours/hp-{hp:08x}", "benchmark": benchmark,
        "family": benchmark.split("-")[0], "split": split, "model": model, "role": role,
        "method": method, "rectifier": rectifier, "parametrization": parametrization,
        "display_name": None, "n_seeds": 2, "seeds": "0,1", "hyperparameters": json.dumps({"lr": hp}),
        "hyperparameters_hash": f"sha256:{hp:064x}", "evaluator_name": "ubench",
        "evaluator_variant": "ours", "item_cap": None, "status": "ok", "comparable": True, "flags": "",
        "pareto_rank": None, "forget_metric": forget, "utility_metric": utility,
        "matched_metric": matched, "matched_level": None, "matched_text": text,
        "utility_at_matched": None, "utility_at_matched_ci_low": None, "utility_at_matched_ci_high": None,
        "matched_status": None, "matched_rank": None, "curve": None, "forget_group": None,
        "utility_group": None, "config_hash": "sha256:" + "0" * 64, "code_version": "git:test",
        "hardware": "cpu (2 cores)", "source": None, "cost:train_seconds": 10.0, "cost:backward_passes": 40.0,
    }


def _metrics(row: dict[str, Any], forget: float, utility: float, matched: float) -> None:
    """Headline metrics, plus the matched metric where it is another one (TOFU's forget_prob)."""
    values = {row["matched_metric"]: matched, row["forget_metric"]: forget, row["utility_metric"]: utility}
    for name, value in values.items():
        row[f"metric:{name}"] = value
        row[f"metric:{name}:ci_low"] = value * 0.95
        row[f"metric:{name}:ci_high"] = value * 1.05


def _letters(rank: int, size: int) -> str:
    """Compact letters of the rank-th best of `size` rows: bands of 8 overlapping at their edges."""
    band = rank * 4 // max(size, 1)
    letters = chr(ord("a") + band)
    if rank % 8 == 7 and band < 3:
        letters += chr(ord("a") + band + 1)
    return letters


def group_rows(benchmark: str, split: str, model: str, n_unlearned: int, rng: random.Random) -> list[dict[str, Any]]:
    """Target, retain and n_unlearned rows of one rank group, with every I2 column filled."""
    _, _, matched, _, (target_forget, target_utility) = BENCHMARKS[benchmark]
    level = 0.12 if matched != BENCHMARKS[benchmark][0] else 0.30
    target = _base(benchmark, split, model, "target", "target", "none", "full", 0)
    retain = _base(benchmark, split, model, "retain", "retain", "none", "full", 0)
    _metrics(target, target_forget, target_utility, 0.9)
    _metrics(retain, 1.0 if benchmark == "tofu-tiny" else 0.30, target_utility - 0.02, level)
    rows = []
    combos = [(m, r, p, hp) for hp in range(1, 100) for m in METHODS for r in RECTIFIERS for p in PARAMETRIZATIONS]
    for method, rectifier, parametrization, hp in combos[:n_unlearned]:
        row = _base(benchmark, split, model, "unlearned", method, rectifier, parametrization, hp)
        final_forget = rng.uniform(0.01, 0.9) if benchmark == "tofu-tiny" else rng.uniform(0.1, 0.6)
        final_utility = rng.uniform(0.2, target_utility)
        points = [[0, target_forget, target_utility]]
        for i, step in enumerate(STEPS, start=1):
            share = i / len(STEPS)
            points.append([step, target_forget + (final_forget - target_forget) * share,
                           target_utility + (final_utility - target_utility) * share ** 1.5])
        status = STATUSES[rng.randrange(len(STATUSES))]
        row["matched_level"] = level
        row["matched_status"] = status
        row["curve"] = None if status == "no trajectory" else json.dumps(points)
        if status.startswith("reached"):
            value = rng.uniform(final_utility, target_utility)
            row.update(utility_at_matched=value, utility_at_matched_ci_low=value - 0.02,
                       utility_at_matched_ci_high=value + 0.02)
        _metrics(row, final_forget, final_utility, rng.uniform(0.05, 0.4))
        rows.append(row)
    reached = sorted((r for r in rows if r["matched_status"] == "reached"),
                     key=lambda r: -r["utility_at_matched"])
    for rank, row in enumerate(reached, start=1):
        row["matched_rank"] = rank
    for key, name in (("forget_group", "forget_metric"), ("utility_group", "utility_metric")):
        ordered = sorted(rows, key=lambda r: -r[f"metric:{r[name]}"])
        for rank, row in enumerate(ordered):
            row[key] = _letters(rank, len(ordered))
    return [target, retain] + rows


def table(n_rows: int = 500, benchmark: str = "tofu-tiny", seed: int = 0,
          splits=("forget01", "forget05", "forget10"), models=("tiny-llama", "tiny-phi")) -> list[dict[str, Any]]:
    """n_rows rows of one benchmark, spread over splits x models rank groups."""
    rng = random.Random(seed)
    groups = [(s, m) for s in splits for m in models]
    unlearned = n_rows - 2 * len(groups)
    rows = []
    for i, (split, model) in enumerate(groups):
        share = unlearned // len(groups) + (1 if i < unlearned % len(groups) else 0)
        rows += group_rows(benchmark, split, model, share, rng)
    return rows


def without_i2(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same rows as table format 2 wrote them: no issue-14 columns."""
    return [{k: v for k, v in row.items() if k not in I2_COLUMNS} for row in rows]


def write_site(folder: Path, rows: list[dict[str, Any]], table_format: int = 3) -> Path:
    columns = _columns()
    extra = sorted({k for row in rows for k in row} - set(columns))
    columns = [c for c in columns + extra if any(c in row for row in rows)]
    rows = sorted(rows, key=lambda row: row["row_id"])  # as a build writes them
    page.write_page(folder, meta={"version": "3.0.0", "content_hash": "sha256:" + "0" * 64,
                                  "table_format": table_format},
                    columns=columns, rows=rows, published_rows=[],
                    changes={"added": [], "changed": {}, "removed": []})
    return folder
