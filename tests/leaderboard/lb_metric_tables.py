"""A synthetic metric meta-evaluation table, as `make meta-eval` writes it, for leaderboard tests."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from leaderboard import metric_tables


def score(value: float, low: float, high: float) -> dict[str, float]:
    return {"value": round(value, 4), "ci_low": round(low, 4), "ci_high": round(high, 4)}


def entry(metric: str, direction: str, faithfulness: float | None, headline: bool = False,
          q: float | None = 0.9, r: float | None = 0.6) -> dict[str, Any]:
    hm = None if q is None or r is None else 2 * q * r / (q + r)
    return {"metric": metric, "direction": direction, "headline": headline,
            "faithfulness": None if faithfulness is None else score(faithfulness, max(faithfulness - 0.1, 0), min(faithfulness + 0.05, 1)),
            "Q": None if q is None else score(q, q - 0.1, 1.0),
            "R": None if r is None else score(r, r - 0.2, min(r + 0.2, 1.0)),
            "HM": None if hm is None else score(hm, hm - 0.15, min(hm + 0.1, 1.0)),
            "n": {"faithfulness": 20, "Q": 12, "R": 12}}


TOFU_TINY = {
    "benchmark": "tofu-tiny", "split": "forget10",
    "pools": {"P": {"models": 10, "description": "targets fine-tuned with 5 seeds × 2 learning rates"},
              "N": {"models": 10, "description": "retain models with the same variation"}},
    "robustness_models": 12,
    "bootstrap": {"samples": 1000, "level": 0.95, "seed": 0, "over": "models"},
    "definitions": {"faithfulness": "AUC-ROC of P vs N", "Q": "min(m_quantized / m_unlearned, 1)",
                    "R": "min(Δ_retain / Δ_unlearn, 1)", "HM": "harmonic mean of Q and R",
                    "lower_is_better": "ratios of 1 - m"},
    "metrics": [entry("forget_quality", "higher", 0.93, headline=True),
                entry("forget_truth_ratio", "higher", 0.55, r=0.3),
                entry("privleak", "zero", 0.81, q=None, r=None),
                entry("model_utility", "higher", None, q=0.95, r=None),
                # the meta-evaluation's spelling of a faithfulness it cannot compute, with its reason
                {**entry("mia_rm_loss", "higher", None, q=None, r=None),
                 "faithfulness": {"value": None, "ci_low": None, "ci_high": None},
                 "note": "relative to each model's own retain reference: no faithfulness"}],
    "replication": {"reference": "open-unlearning Table 2",
                    "checks": [{"claim": "Truth Ratio has high faithfulness", "holds": False, "detail": "AUC 0.55 < 0.7"},
                               {"claim": "ES is robust to relearning", "holds": None, "detail": "ES not measured"},
                               {"claim": "ROUGE has low relearning robustness", "holds": True, "detail": "R 0.3"}]},
}


def table(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(TOFU_TINY)
    out.update(changes)
    return out


def write(root: Path, document: dict[str, Any] | None = None, folder: str | None = None) -> Path:
    document = table() if document is None else document
    where = Path(root) / metric_tables.FOLDER / (folder or document["benchmark"]) / metric_tables.FILE
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_text(json.dumps(document), encoding="utf-8")
    return where
