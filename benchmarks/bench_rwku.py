"""RWKU evaluator on the real probes of targets 1-10 with the (untrained) tiny Llama: wall time per
target and evaluator variant, item counts, metrics. CI runs target 1 only
(tests/evaluation/test_rwku_tiny.py); this covers the rest. Saves benchmarks/results/rwku_real_probes.{json,png}."""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED_RWKU = REPO.parent / "shared" / "data" / "rwku"
OUT = REPO / "benchmarks" / "results"


def main() -> int:
    from evaluation import benchmarks, evaluate, models
    from evaluation.benchmarks.rwku.data import RwkuData

    if not (SHARED_RWKU / "1_Stephen_King").is_dir():
        print(f"skipped: real RWKU data not found at {SHARED_RWKU}")
        return 0
    bench = benchmarks.get("rwku")
    data = RwkuData.from_folder(SHARED_RWKU)
    targets = [int(a) for a in sys.argv[1:]] or list(range(1, 11))   # e.g. `bench_rwku.py 1 2`
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        texts = bench.vocabulary_texts(RwkuData(data.root, {t: data.target(t) for t in range(1, 11)}))
        folder = models.build_tiny_llama(texts, Path(tmp) / "tiny", seed=0, max_position_embeddings=4096)
        tok = models.load_tokenizer(str(folder))
        bench.prepare_tiny_tokenizer(tok)
        tok.save_pretrained(folder)
        for target in targets:
            for variant in ("official", "sago"):
                start = time.perf_counter()
                document = evaluate.run(evaluate.EvaluationSpec(
                    str(folder), "rwku", str(SHARED_RWKU), f"target-{target}", variant,
                    Path(tmp) / f"eval-{target}-{variant}", progress=False))
                seconds = time.perf_counter() - start
                rows.append({"target": target, "variant": variant, "seconds": round(seconds, 2),
                             "items": document["metric_details"]["items"], "cost": document["cost"],
                             "metrics": document["metrics"]})
                print(f"target {target:2d} {variant:8s} {seconds:7.1f} s  forget_all "
                      f"{document['metrics']['forget_all']:.3f}  neighbor_all {document['metrics']['neighbor_all']:.3f}",
                      flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "rwku_real_probes.json").write_text(json.dumps(rows, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3))
        for variant in ("official", "sago"):
            part = [r for r in rows if r["variant"] == variant]
            ax.plot([r["target"] for r in part], [r["seconds"] for r in part], marker="o", label=variant)
        ax.set_xlabel("RWKU target id"), ax.set_ylabel("evaluation seconds (tiny Llama, CPU)")
        ax.legend(), fig.tight_layout(), fig.savefig(OUT / "rwku_real_probes.png", dpi=120)
    except ImportError:
        pass
    total = sum(r["seconds"] for r in rows)
    print(f"total {total:.1f} s over {len(rows)} evaluations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
