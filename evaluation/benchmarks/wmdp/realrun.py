"""The tiny Llama on the real WMDP + MMLU files through the real path (open → lm-eval), for the CI
subset test and `make bench` (benchmarks/bench_wmdp.py)."""
from __future__ import annotations

import time
from pathlib import Path


def tiny_model_on_real_data(data_dir: str | Path, work: str | Path, *, limit: int | None, batch_size: int = 32,
                            variant: str = "rmu-official", seed: int = 0) -> dict:
    """Open + validate the real data (all 3,668 + 14,042 questions), build a random-init tiny Llama
    whose vocabulary covers them, and score the first `limit` questions of every task (None = all).
    Returns metrics, details, per-item row count and the seconds of each phase."""
    from evaluation import benchmarks, models
    from evaluation.benchmarks.wmdp import scoring

    bench = benchmarks.get("wmdp")
    start = time.perf_counter()
    data = bench.open(data_dir)
    opened = time.perf_counter()
    folder = models.build_tiny_llama(bench.vocabulary_texts(data), Path(work) / "tiny-llama", seed=seed)
    model, tokenizer, _ = models.load_model(str(folder))
    built = time.perf_counter()
    result, table, cost = scoring.evaluate(model, tokenizer, data, scoring.get_variant(variant),
                                           batch_size=batch_size, limit=limit)
    done = time.perf_counter()
    return {"result": result, "rows": len(table), "table": table, "cost": cost,
            "seconds": {"open_and_validate": round(opened - start, 2), "build_model": round(built - opened, 2),
                        "lm_eval": round(done - built, 2), "total": round(done - start, 2)}}
