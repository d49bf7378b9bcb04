"""Evaluation cost on tofu-tiny forget10: the shared-pass harness vs a naive evaluation in which every
metric runs its own batch-size-1 passes (what a metric-by-metric implementation does).

Prints and saves benchmarks/results/eval.json and eval.png. Trains nothing: a fresh tiny-llama
generates until its 200-token budget (the worst case of an unlearned model that never stops).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import atomic  # noqa: E402
from evaluation import models  # noqa: E402
from evaluation.benchmarks.tofu import evaluator as tofu_eval  # noqa: E402
from evaluation.benchmarks.tofu import tiny as tofu_tiny  # noqa: E402
from evaluation.benchmarks.tofu.data import TofuData  # noqa: E402
from evaluation.harness import Continuation, Generation, Harness  # noqa: E402
from evaluation.metrics import memorization, mia  # noqa: E402
from evaluation.benchmarks.tofu import metrics as m  # noqa: E402
from evaluation.benchmarks.tofu.data import vocabulary_texts  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SPLIT = "forget10"


def naive_evaluation(model, tokenizer, fmt, rows, variant) -> int:
    """Every metric scores or generates on its own, one item at a time. Returns model passes run."""
    passes = 0

    def score(prompt, text):
        nonlocal passes
        harness = Harness(model, tokenizer, max_length=variant.encode_max_length, batch_size=1, progress=False)
        passes += 1
        return harness.loglikelihood([Continuation(prompt, text)])[0]

    def generate(prompt):
        nonlocal passes
        harness = Harness(model, tokenizer, gen_batch_size=1, max_new_tokens=variant.max_new_tokens, progress=False)
        passes += 1
        return harness.generate_until([Generation(prompt, decode_stop_token=True)])[0].strip()

    for name, items in rows.items():
        if name == "holdout":
            continue
        _, hat_field, _ = tofu_eval.SET_SPECS[name]
        prompts = [fmt.prompt(r["question"], tokenizer) for r in items]
        m.probability([score(p, r["answer"]).mean_loss for p, r in zip(prompts, items)])          # probability
        [m.rouge_recall(r["answer"], generate(p)) for p, r in zip(prompts, items)]                 # ROUGE
        m.truth_ratio_items([score(p, r[hat_field]).mean_loss for p, r in zip(prompts, items)],    # truth ratio
                            [[score(p, w).mean_loss for w in r["perturbed_answer"]] for p, r in zip(prompts, items)])
    forget = [(fmt.prompt(r["question"], tokenizer), r["answer"]) for r in rows["forget"]]
    holdout = [(fmt.prompt(r["question"], tokenizer), r["answer"]) for r in rows["holdout"]]
    for p, a in forget:                                                                            # ES, EM
        memorization.extraction_strength(score(p, a).hits)
        memorization.exact_memorization(score(p, a).hits)
    for attack in ("loss", "zlib", "mink", "minkpp"):                                              # MIA, privleak
        values = []
        for p, a in forget + holdout:
            s = score(p, a)
            values.append({"loss": lambda: mia.loss_score(s.logprobs), "zlib": lambda: mia.zlib_score(s.logprobs, a),
                           "mink": lambda: mia.mink_score(s.logprobs),
                           "minkpp": lambda: mia.minkpp_score(s.logprobs, s.mu, s.sigma)}[attack]())
        mia.auc(values[:len(forget)], values[len(forget):])
    return passes


def main() -> int:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = tofu_tiny.write(Path(tmp) / "data")
        data = TofuData(folder)
        model_dir = models.build_tiny_llama(vocabulary_texts(data), Path(tmp) / "model", seed=0)
        device = models.evaluation_device()  # the GPU when there is one (benchmarks/gpu_check.sh)
        model, tokenizer, fmt = models.load_model(str(model_dir), device=device,
                                                  dtype=models.evaluation_dtype(device))
        variant = tofu_eval.VARIANTS["full"]
        rows = tofu_eval.eval_rows(data, SPLIT, variant)

        start = time.perf_counter()
        _, _, harness = tofu_eval.evaluate(model, tokenizer, fmt, data, SPLIT, variant, progress=False)
        shared_seconds = time.perf_counter() - start

        start = time.perf_counter()
        naive_passes = naive_evaluation(model, tokenizer, fmt, rows, variant)
        naive_seconds = time.perf_counter() - start

    figures = {
        "benchmark": "tofu-tiny", "split": SPLIT, "variant": variant.name, "threads": 1,
        "shared_seconds": round(shared_seconds, 2), "naive_seconds": round(naive_seconds, 2),
        "speedup": round(naive_seconds / shared_seconds, 2),
        "shared_sequences_scored": harness.sequences_scored, "shared_prompts_generated": harness.prompts_generated,
        "naive_model_passes": naive_passes, "device": device, "dtype": models.evaluation_dtype(device),
    }
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "eval" if device == "cpu" else f"eval-{device}"
    atomic.write_json(RESULTS / f"{name}.json", figures)
    if os.environ.get("OUT"):  # the device machine returns only what is under $OUT
        atomic.write_json(Path(os.environ["OUT"]) / f"{name}.json", figures)
    _plot(figures, name)
    return 0


def _plot(figures: dict, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 2.4))
    labels = ["shared passes", "naive (per metric, batch 1)"]
    values = [figures["shared_seconds"], figures["naive_seconds"]]
    ax.barh(labels, values, color=["#2b7a78", "#c44536"])
    for y, value in enumerate(values):
        ax.text(value, y, f" {value:.1f} s", va="center")
    ax.set_xlabel("seconds, 1 CPU thread" if figures["device"] == "cpu" else f"seconds, {figures['device']}")
    ax.set_title(f"tofu-tiny {figures['split']} evaluation: {figures['speedup']:.1f}x faster")
    ax.set_xlim(0, max(values) * 1.25)
    fig.tight_layout()
    with atomic.atomic_path(RESULTS / f"{name}.png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
