"""One-GPU comparison of the generation engines (issue 16): transformers greedy vs vLLM.

For each model — the tiny Llama (fresh, word tokenizer), a random ~1B Llama (same tokenizer, no
download) and, when GEN_CHECK_MODEL names a local HF folder, that real model — run the same greedy
generation pass (TOFU-style questions, 200 new tokens at most) through `Harness` with
`backend="transformers"` and `backend="vllm"`, and record tokens per second, the selection (with its
sample check on the first 8 prompts) and how many of all outputs are identical. Without vLLM or a
GPU the vLLM row records why it did not run. Saves benchmarks/results/generation_backends.json.

    python benchmarks/generation_backends_gpu.py [--prompts 256] [--cpu-smoke]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
OUT = REPO / "benchmarks" / "results"

WORDS = ("the author was born in a small town near the sea and wrote many books about ships storms "
         "families and old letters found in an attic her father was a sailor").split()
ONE_B = dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=16, num_attention_heads=16,
             num_key_value_heads=16, max_position_embeddings=1024, tie_word_embeddings=False)


def prompts(count: int) -> list[str]:
    return [f"Question: {' '.join(WORDS[i % 7:(i % 7) + 4 + i % 9])} {i}?\nAnswer:" for i in range(count)]


def run_engine(folder: str, backend: str, texts: list[str], device, dtype, max_new_tokens: int) -> dict:
    import torch

    from evaluation import backends, models
    from evaluation.harness import Generation, Harness

    model, tokenizer, _ = models.load_model(folder, device=device, dtype=dtype)
    # generation batches sized by free memory (evaluation/generation_batch.py), as in `ubench evaluate`
    harness = Harness(model, tokenizer, max_new_tokens=max_new_tokens, progress=False, backend=backend)
    try:
        start = time.perf_counter()
        outputs = dict(zip(texts, (out.strip() for out in harness.generate_until(
            [Generation(text, decode_stop_token=True) for text in texts]))))
        seconds = time.perf_counter() - start
    except RuntimeError as error:  # explicit vllm without vLLM / GPU
        return {"backend": backend, "error": str(error)}
    record = harness.selection.record() if harness.selection else backends.summary([], backend)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return {"backend": backend, "engine": harness.generation_backend, "selection": record,
            "tokens_generated": harness.tokens_generated, "generation_batch_rows": harness.generation_batch_rows,
            "seconds": round(seconds, 3),
            "tokens_per_second": round(harness.tokens_generated / seconds, 1) if seconds else None,
            "outputs": outputs}


def compare(folder: str, name: str, count: int, device, dtype, max_new_tokens: int) -> dict:
    texts = prompts(count)
    rows = [run_engine(folder, backend, texts, device, dtype, max_new_tokens) for backend in ("transformers", "vllm")]
    reference, candidate = rows
    if "outputs" in candidate and candidate["engine"] == "vllm":
        same = sum(reference["outputs"][t] == candidate["outputs"][t] for t in texts)
        candidate["identical_outputs"] = f"{same}/{len(texts)}"
        candidate["speedup"] = round(candidate["tokens_per_second"] / reference["tokens_per_second"], 2)
    for row in rows:
        row.pop("outputs", None)
    summary = {"model": name, "prompts": count, "max_new_tokens": max_new_tokens, "rows": rows}
    print(json.dumps(summary, indent=2), flush=True)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny model only, on CPU, 16 prompts")
    args = parser.parse_args()
    import torch

    from evaluation import models

    device = torch.device("cpu" if args.cpu_smoke else "cuda")
    dtype = torch.float32 if args.cpu_smoke else torch.bfloat16
    count, budget = (16, 16) if args.cpu_smoke else (args.prompts, args.max_new_tokens)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        texts = [" ".join(WORDS)] + prompts(64)
        tiny = models.build_tiny_llama(texts, Path(scratch) / "tiny")
        results.append(compare(str(tiny), "tiny-llama (random init)", count, device, dtype, budget))
        if not args.cpu_smoke:
            one_b = models.build_tiny_llama(texts, Path(scratch) / "llama-1b", **ONE_B)
            results.append(compare(str(one_b), "llama ~1B (random init, word tokenizer)", count, device, dtype, budget))
            real = os.environ.get("GEN_CHECK_MODEL")
            if real and (Path(real) / "config.json").is_file():
                results.append(compare(real, f"{Path(real).name} (real checkpoint)", count, device, dtype, budget))
    OUT.mkdir(parents=True, exist_ok=True)
    name = "generation_backends-smoke.json" if args.cpu_smoke else "generation_backends.json"
    (OUT / name).write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
