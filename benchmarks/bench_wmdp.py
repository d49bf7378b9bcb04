"""The tiny Llama (random init, vocabulary of the real questions) on ALL real WMDP (3,668) and MMLU
test (14,042) questions through the project's real path: data validation, upstream-identical lm-eval
tasks, HFLM in-memory scoring. CI runs a 10-per-task subset (tests/evaluation/test_wmdp_real.py)
because this costs more than 2 minutes on 2 CPU cores.

Prints and saves benchmarks/results/wmdp.json (seconds per phase, metrics) and wmdp.png.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import atomic  # noqa: E402
from evaluation.benchmarks.wmdp import realrun  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> int:
    if not (SHARED / "wmdp" / "bio_questions.json").is_file():
        print(f"skipped: real WMDP/MMLU data not found under {SHARED}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = realrun.tiny_model_on_real_data(SHARED, tmp, limit=None, batch_size=32)
    result = out["result"]
    summary = {"seconds": out["seconds"], "items": out["rows"], "sequences_scored": out["cost"]["sequences_scored"],
               "metrics": result["metrics"], "stderr": {k: v["stderr"] for k, v in result["metric_details"].items()},
               "evaluator": result["evaluator"]}
    print(json.dumps({k: summary[k] for k in ("seconds", "items", "sequences_scored")}, indent=2))
    for name, value in result["metrics"].items():
        print(f"{name:34s} {value:.4f} ± {summary['stderr'][name]:.4f}")
    RESULTS.mkdir(exist_ok=True)
    atomic.write_json(RESULTS / "wmdp.json", summary)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        phases = {k: v for k, v in out["seconds"].items() if k != "total"}
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.barh(list(phases), list(phases.values()))
        ax.set_xlabel("seconds (2 CPU cores)")
        ax.set_title(f"tiny Llama on all WMDP + MMLU ({out['rows']} questions)")
        fig.tight_layout()
        fig.savefig(RESULTS / "wmdp.png", dpi=120)
    except ImportError:
        print("matplotlib not installed: no figure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
