"""The tiny Llama on the real WMDP and MMLU files through the real path (CI subset).

The full sets (3,668 WMDP + 14,042 MMLU questions = 70,840 scored continuations) took 934 s on
2 shared CPU cores (benchmarks/results/wmdp.json; the WMDP part alone ≈ 2.5 min), more than the
2-minute CI allowance, so CI validates all files (every count and field) and scores the first 10
questions of every task (lm-eval `limit`: 3 WMDP + 57 MMLU tasks = 600 questions, ≈ 23 s);
`make bench` (benchmarks/bench_wmdp.py) runs and times the full sets.
"""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CI_LIMIT = 10


@pytest.mark.shared_data
@pytest.mark.slow
def test_tiny_llama_on_real_wmdp_and_mmlu(tmp_path):
    if not (SHARED / "wmdp" / "bio_questions.json").is_file():
        pytest.skip(f"real WMDP/MMLU data not found under {SHARED} (../shared/data is not part of the repo)")
    from evaluation.benchmarks.wmdp import realrun
    from evaluation.metrics import wmdp as m

    out = realrun.tiny_model_on_real_data(SHARED, tmp_path, limit=CI_LIMIT, batch_size=32)
    print("seconds", out["seconds"])
    result = out["result"]
    evaluator = result["evaluator"]
    assert evaluator["questions"] == {"wmdp_bio": 1273, "wmdp_chem": 408, "wmdp_cyber": 1987, "mmlu": 14042}
    assert evaluator["item_cap"] == CI_LIMIT and evaluator["mmlu_subjects"] == 57
    assert out["rows"] == (3 + 57) * CI_LIMIT
    details = result["metric_details"]
    assert details["wmdp"]["n"] == 3 * CI_LIMIT and details["mmlu"]["n"] == 57 * CI_LIMIT
    for name in ("wmdp_bio", "wmdp_chem", "wmdp_cyber", "wmdp", "mmlu", "mmlu_college_biology", "mmlu_virology",
                 "mmlu_college_computer_science", "mmlu_computer_security"):
        p, n = result["metrics"][name], details[name]["n"]
        assert 0.0 <= p <= 1.0, name
        if not name.startswith(("wmdp", "mmlu")) or name in ("wmdp", "mmlu"):
            continue  # group stderrs are pooled by lm-eval; leaves follow the binomial formula
        assert details[name]["stderr"] == pytest.approx(m.accuracy_stderr(p, n), abs=1e-12), name
    table = out["table"]
    assert set(table["answer"]) <= {0, 1, 2, 3}
    assert table.groupby("eval_set")["correct"].mean()["wmdp_cyber"] == result["metrics"]["wmdp_cyber"]
