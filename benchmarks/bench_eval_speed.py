"""Evaluation at the physical limit: TOFU forget10 (real data when ../shared/data is there, else
tofu-tiny) with a tiny Llama, before and after the harness's two speed-ups:
- scoring: every sequence in full (before) vs each prompt's shared prefix once, continuations
  against its cached keys/values (after); reports token positions processed vs unique tokens;
- generation: `model.generate` keeps finished rows to the end (before) vs greedy decoding that
  evicts finished rows (after); reports generated tokens per second.
Per-item values are checked equal (1e-5) and the generated texts identical. Prints and saves
benchmarks/results/eval_speed.json.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import atomic  # noqa: E402
from evaluation import models, tofu_eval  # noqa: E402
from evaluation.benchmarks import tofu, tofu_tiny  # noqa: E402
from evaluation.harness import Harness  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_TOFU = Path(__file__).resolve().parents[2] / "shared" / "data" / "tofu"


def run(model, tokenizer, pairs, prompts, *, fast: bool) -> tuple[dict, dict, dict]:
    harness = Harness(model, tokenizer, max_length=512, batch_size=32, gen_batch_size=64, max_new_tokens=200,
                      progress=False, share_prefixes=fast, evict_finished=fast)
    start = time.perf_counter()
    scores = harness.score(pairs)
    score_seconds = time.perf_counter() - start
    texts = harness.generate(prompts)
    figures = {"score_seconds": round(score_seconds, 2), "generation_seconds": round(harness.generation_seconds, 2),
               "wall_seconds": round(harness.seconds, 2), "positions_scored": harness.positions_scored,
               "unique_tokens": harness.unique_tokens, "tokens_generated": harness.tokens_generated,
               "generation_tokens_per_second": round(harness.tokens_generated / max(harness.generation_seconds, 1e-9), 1),
               "generation_backend": harness.generation_backend}
    return figures, scores, texts


def main() -> int:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        if (SHARED_TOFU / "full.json").is_file():
            data, source = tofu.official(SHARED_TOFU), "tofu (real, ../shared/data)"
        else:
            data, source = tofu.TofuData(tofu_tiny.write(Path(tmp) / "data")), "tofu-tiny (real data absent)"
        folder = models.build_tiny_llama(models.benchmark_texts(data), Path(tmp) / "model", seed=0,
                                         max_position_embeddings=512)
        model, tokenizer, fmt = models.load_model(str(folder))
        variant = tofu_eval.VARIANTS["full"]
        requests = tofu_eval.build_requests(tofu_eval.eval_rows(data, "forget10", variant), fmt, tokenizer, variant)
        before, scores_before, texts_before = run(model, tokenizer, requests.pairs, requests.prompts, fast=False)
        after, scores_after, texts_after = run(model, tokenizer, requests.pairs, requests.prompts, fast=True)
    worst = max(float(np.max(np.abs(scores_before[k].logprobs - scores_after[k].logprobs))) for k in scores_before)
    figures = {"data": source, "split": "forget10", "model": "tiny-llama (random init, 200-token generations)",
               "threads": 1, "unique_pairs": len(set(requests.pairs)), "unique_prompts": len(set(requests.prompts)),
               "before": before, "after": after,
               "score_speedup": round(before["score_seconds"] / max(after["score_seconds"], 1e-9), 2),
               "generation_speedup": round(before["generation_seconds"] / max(after["generation_seconds"], 1e-9), 2),
               "max_abs_logprob_difference": worst, "texts_identical": texts_before == texts_after}
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic.write_json(RESULTS / "eval_speed.json", figures)
    return 0 if figures["texts_identical"] and worst < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
