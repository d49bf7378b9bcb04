"""Evaluation at the physical limit: TOFU forget10 (real data when ../shared/data is there, else
tofu-tiny) with a tiny Llama, before and after the harness's speed-ups:
- scoring: every sequence in full, logits of every position, the vocabulary maths in one pass over
  all labelled positions (before) vs each prompt's shared prefix once with continuations against
  its cached keys/values, the output head on labelled positions only, the vocabulary maths in
  cache-sized blocks, Min-K++ moments only for the pairs that read them (after); reports token
  positions processed vs unique tokens;
- generation: `model.generate` in batches of 64 keeps finished rows to the end and copies the
  key/value cache at every token (before) vs greedy decoding in batches as large as memory holds
  that evicts finished rows and appends keys/values in place (after); reports generated tokens per
  second.
"Before" is the harness with those switched off (`baseline_paths`), i.e. the code path of the
harness before them. Per-item values are checked equal (1e-5) and the generated texts identical.
Two models: the randomly initialised tiny Llama (every answer runs to the 200-token budget) and a
fine-tuned one (answers stop at their own EOS): 2 epochs of the tofu-tiny recipe on the data's
`full` split (about 2 min on 2 cores), or --trained FOLDER. Prints and saves
benchmarks/results/eval_speed.json.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import atomic  # noqa: E402
import tiny_tofu_models  # noqa: E402
from evaluation import greedy, harness as harness_module, models, token_statistics  # noqa: E402
from evaluation.benchmarks.tofu import evaluator as tofu_eval  # noqa: E402
from evaluation.benchmarks.tofu import data as tofu, tiny as tofu_tiny  # noqa: E402
from evaluation.harness import Continuation, Generation, Harness  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_TOFU = Path(__file__).resolve().parents[2] / "shared" / "data" / "tofu"


@contextlib.contextmanager
def baseline_paths():
    """The harness as it was before the speed-ups: full logits, one pass of vocabulary maths,
    transformers' own key/value cache (plus share_prefixes / evict_finished off in `run`)."""
    saved = (harness_module.split_head, token_statistics.CPU_BLOCK_ELEMENTS, greedy.growing_cache)
    harness_module.split_head = lambda model: None
    token_statistics.CPU_BLOCK_ELEMENTS = 1 << 62
    greedy.growing_cache = lambda model: None
    try:
        yield
    finally:
        harness_module.split_head, token_statistics.CPU_BLOCK_ELEMENTS, greedy.growing_cache = saved


def run(model, tokenizer, requests, *, fast: bool) -> tuple[dict, dict, dict]:
    harness = Harness(model, tokenizer, max_length=512, batch_size=32, gen_batch_size=None if fast else 64,
                      max_new_tokens=200,
                      progress=False, share_prefixes=fast, evict_finished=fast)
    with contextlib.nullcontext() if fast else baseline_paths():
        start = time.perf_counter()
        wanted = set(requests.moment_pairs) if fast else set(requests.pairs)
        scores = dict(zip(requests.pairs, harness.loglikelihood(
            [Continuation(p, c, moments=(p, c) in wanted) for p, c in requests.pairs])))
        score_seconds = time.perf_counter() - start
        texts = dict(zip(requests.prompts, (t.strip() for t in harness.generate_until(
            [Generation(p, decode_stop_token=True) for p in requests.prompts]))))
    figures = {"score_seconds": round(score_seconds, 2), "generation_seconds": round(harness.generation_seconds, 2),
               "wall_seconds": round(harness.seconds, 2), "positions_scored": harness.positions_scored,
               "unique_tokens": harness.unique_tokens, "tokens_generated": harness.tokens_generated,
               "generation_tokens_per_second": round(harness.tokens_generated / max(harness.generation_seconds, 1e-9), 1),
               "generation_batch_rows": harness.generation_batch_rows, "generation_backend": harness.generation_backend}
    return figures, scores, texts


def measure(folder: Path, data, label: str) -> dict:
    model, tokenizer, fmt = models.load_model(str(folder))
    variant = tofu_eval.VARIANTS["full"]
    requests = tofu_eval.build_requests(tofu_eval.eval_rows(data, "forget10", variant), fmt, tokenizer, variant)
    before, scores_before, texts_before = run(model, tokenizer, requests, fast=False)
    after, scores_after, texts_after = run(model, tokenizer, requests, fast=True)
    worst = max(float(np.max(np.abs(scores_before[k].logprobs - scores_after[k].logprobs))) for k in scores_before)
    worst_moments = max(float(np.max(np.abs(scores_before[k].sigma - scores_after[k].sigma)))
                        for k in set(requests.moment_pairs))
    return {"model": label, "unique_pairs": len(set(requests.pairs)), "unique_prompts": len(set(requests.prompts)),
            "before": before, "after": after,
            "score_speedup": round(before["score_seconds"] / max(after["score_seconds"], 1e-9), 2),
            "generation_speedup": round(before["generation_seconds"] / max(after["generation_seconds"], 1e-9), 2),
            "wall_speedup": round(before["wall_seconds"] / max(after["wall_seconds"], 1e-9), 2),
            "max_abs_logprob_difference": worst, "max_abs_sigma_difference": worst_moments,
            "texts_identical": texts_before == texts_after}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trained", type=Path, help="also measure this fine-tuned tiny model folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        if (SHARED_TOFU / "full.json").is_file():
            benchmark, data_dir, source = "tofu", SHARED_TOFU, "tofu (real, ../shared/data)"
        else:
            benchmark, data_dir, source = "tofu-tiny", tofu_tiny.write(Path(tmp) / "data"), "tofu-tiny (real data absent)"
        data = tofu.official(data_dir) if benchmark == "tofu" else tofu.TofuData(data_dir)
        runs = [measure(tiny_tofu_models.random_model(data, Path(tmp) / "model"), data, tiny_tofu_models.RANDOM)]
        if args.trained is None:
            trained = tiny_tofu_models.finetuned_model(benchmark, data_dir, Path(tmp) / "trained")
            runs.append(measure(trained, data, tiny_tofu_models.FINETUNED))
        else:
            runs.append(measure(args.trained, data, f"tiny-llama fine-tuned ({args.trained})"))
    figures = {"data": source, "split": "forget10", "threads": 1, "runs": runs}
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic.write_json(RESULTS / "eval_speed.json", figures)
    ok = all(r["texts_identical"] and r["max_abs_logprob_difference"] < 1e-5 and r["max_abs_sigma_difference"] < 1e-5
             for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
