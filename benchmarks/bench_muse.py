"""`make bench` part: the tiny Llama (random init, vocabulary of the eval files) evaluated on the
full real MUSE-News eval sets (100 verbmem, 100 + 100 knowmem with their 10-shot ICL sets, 3 x 100
privleak texts) with both evaluator variants. Prints the metrics, the truncation counts and the
cost, and saves them to benchmarks/results/muse_real_news.json. CI runs a 10-item subset
(tests/evaluation/test_muse.py); this is the full-size run. Needs ../shared/data/muse/news."""
from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evaluation import benchmarks, models  # noqa: E402
from evaluation.benchmarks.muse import data as muse_data  # noqa: E402
from evaluation.benchmarks.muse import evaluator  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "muse"
OUT = REPO / "benchmarks" / "results" / "muse_real_news.json"


def main() -> int:
    if not (SHARED / "news").is_dir():
        print(f"skipped: {SHARED}/news not found")
        return 0
    corpus = benchmarks.get("muse").open(SHARED).corpus("news")
    texts = ["Question: Answer:"] + [v for name in muse_data.EVAL_FILES for row in corpus[name]
                                     for v in (row.values() if isinstance(row, dict) else [row])]
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = models.build_tiny_llama(texts, Path(tmp) / "model", seed=0)
        model, tokenizer, _ = models.load_model(str(folder))
        for variant in evaluator.VARIANTS:
            start = time.perf_counter()
            result, table, harness = evaluator.evaluate(model, tokenizer, corpus, evaluator.get_variant(variant),
                                                        retain_corpus="standin (non-official)", progress=False)
            seconds = time.perf_counter() - start
            finite = all(math.isfinite(v) for v in result["metrics"].values())
            report[variant] = {"metrics": result["metrics"], "truncation": result["metric_details"]["truncation"],
                               "privleak": result["metric_details"]["privleak"], "cost": harness.cost(),
                               "wall_seconds": round(seconds, 1), "items": table.groupby("eval_set").size().to_dict(),
                               "all_finite": finite}
            print(f"{variant}: {json.dumps(result['metrics'])}  ({seconds:.1f} s, items "
                  f"{report[variant]['items']}, all finite: {finite})")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))
    print(f"wrote {OUT}")
    return 0 if all(r["all_finite"] for r in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
