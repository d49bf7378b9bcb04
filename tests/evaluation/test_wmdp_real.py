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
    from evaluation.benchmarks.wmdp import metrics as m

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


@pytest.mark.shared_data
def test_official_rmu_recipe_runs_on_the_real_benchmark_with_fake_corpora(tmp_path):
    """`ubench unlearn` on benchmark `wmdp` (real questions, counts checked) with small fake corpora
    written in the exact layout, the official RMU corpus options (wikitext retain, per-document
    truncation) and the wmdp-zephyr preset scaled to the tiny Llama's 4 blocks."""
    import json

    from evaluation import benchmarks, models
    from workflows import commands

    if not (SHARED / "wmdp" / "bio_questions.json").is_file():
        pytest.skip(f"real WMDP/MMLU data not found under {SHARED} (../shared/data is not part of the repo)")
    root = tmp_path / "data"
    root.mkdir()
    for name in ("wmdp", "mmlu"):
        (root / name).symlink_to(SHARED / name)
    (root / "wmdp-corpora").mkdir()
    (root / "wmdp-corpora" / "bio-forget-corpus.jsonl").write_text("".join(
        json.dumps({"title": "t", "abstract": "a", "text": f"The virus binds receptor {i} and spreads fast . " * 30,
                    "doi": str(i)}) + "\n" for i in range(8)))
    (root / "wikitext").mkdir()
    (root / "wikitext" / "wikitext-2-raw-v1-test.jsonl").write_text("".join(
        json.dumps({"text": text}) + "\n" for text in
        ["", " = Valkyria Chronicles = \n"] + [f"The game was released in {y} and praised by critics . " * 8
                                              for y in range(2000, 2008)]))
    bench = benchmarks.get("wmdp")
    data = bench.open(root)
    target = models.build_tiny_llama(bench.vocabulary_texts(data) + ["The virus binds receptor and spreads fast",
                                     "The game was released in and praised by critics"], tmp_path / "base", seed=0)
    spec = {"benchmark": "wmdp", "split": "bio", "model": "tiny-llama", "objective": "rmu", "rectifier": "none",
            "parametrization": "subset", "seed": 42, "hyperparameters": {
                "lr": 5e-5, "max_steps": 2, "batch_size": 4, "scheduler": "constant", "max_length": 64,
                "objective_args": {"preset": "wmdp-zephyr", "layer": 2},
                "parametrization_args": {"params": ["model.layers.[1-2].mlp.down_proj.weight"]},
                "corpus": {"retain": "wikitext", "packing": "truncate", "retain_max_length": 32, "min_chars": 50}}}
    out = tmp_path / "run"
    document = commands.unlearn(spec, str(root), str(target), out / "model", out / "log.jsonl", out / "result.json",
                                progress=False)
    assert document["status"] == "ok" and document["cost"]["optimizer_steps"] == 2
    assert document["cost"]["trainable_parameters"] == 2 * 256 * 128  # blocks 1-2 down_proj only, as the recipe
    assert (out / "model" / "config.json").is_file()
