"""Generation batches sized by memory: the cache arithmetic, the budget, and identical texts."""
from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig

from evaluation import generation_batch, models
from evaluation.benchmarks.tofu import TofuData
from evaluation.harness import Harness

LLAMA2_7B = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                        vocab_size=32000)
LLAMA3_8B = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                        num_key_value_heads=8, vocab_size=128256)


def test_cache_bytes_per_position_count_keys_values_of_every_layer():
    # keys and values × 32 layers × kv heads × 128 dims × 2 bytes (bf16)
    assert generation_batch.kv_bytes_per_position(LLAMA2_7B, 2) == 2 * 32 * 32 * 128 * 2 == 512 * 1024
    assert generation_batch.kv_bytes_per_position(LLAMA3_8B, 2) == 128 * 1024  # grouped-query: 8 kv heads
    assert generation_batch.kv_bytes_per_position(LlamaConfig(hidden_size=256, num_attention_heads=4,
                                                              num_hidden_layers=2, head_dim=96), 4) == 2 * 2 * 4 * 96 * 4


def test_a_7b_tofu_batch_on_an_80gb_gpu_is_memory_bound():
    # TOFU: ~100-token prompts, 200 new tokens, 128 positions of growing-cache headroom; 80 GB less
    # 13.5 GB of bf16 weights, 80 % of it usable
    per_row = generation_batch.bytes_per_row(LLAMA2_7B, 2, 100, 100 + 200 + 128)
    assert 220e6 < per_row < 300e6  # the cache (428 × 512 KiB) dominates
    assert 150 < int(0.8 * 66.5e9) // per_row < generation_batch.MAX_ROWS


class _Tiny(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.weight = torch.nn.Parameter(torch.zeros(1, dtype=torch.bfloat16))


def test_rows_follow_the_free_memory_within_one_and_the_cap(monkeypatch):
    model = _Tiny(LLAMA2_7B)
    per_row = generation_batch.bytes_per_row(LLAMA2_7B, 2, 50, 50 + 100 + 16)
    for budget, rows in ((10 * per_row + 1, 10), (per_row // 2, 1), (10_000 * per_row, generation_batch.MAX_ROWS)):
        monkeypatch.setattr(generation_batch, "free_bytes", lambda device, b=budget: b)
        assert generation_batch.rows_that_fit(model, 50, 100, 16) == rows
    model.config = object()  # says nothing of its cache
    assert generation_batch.rows_that_fit(model, 50, 100, 16) == generation_batch.FALLBACK_ROWS


def test_cpu_budget_is_a_share_of_available_memory():
    import psutil

    budget = generation_batch.free_bytes(torch.device("cpu"))
    assert 0 < budget <= generation_batch.CPU_MEMORY_FRACTION * psutil.virtual_memory().total


@pytest.fixture(scope="module")
def tiny(tiny_folder, tmp_path_factory):
    folder = models.build_tiny_llama(models.benchmark_texts(TofuData(tiny_folder)),
                                     tmp_path_factory.mktemp("gen-batch") / "m", seed=3)
    return models.load_model(str(folder))


def test_memory_sized_batches_give_the_texts_of_batch_one(tiny, monkeypatch):
    model, tokenizer, fmt = tiny
    prompts = [fmt.prompt(q) for q in ("Who wrote Emma?", "What is the capital of Peru?", "Name two books.",
                                       "Which award did Amara Lisbon win, and in which year?", "Why?")]
    seen = []
    real = generation_batch.rows_that_fit

    def planned(model, prompt_tokens, new_tokens, headroom=0):
        seen.append((prompt_tokens, new_tokens, headroom))
        return min(2, real(model, prompt_tokens, new_tokens, headroom))

    monkeypatch.setattr(generation_batch, "rows_that_fit", planned)
    auto = Harness(model, tokenizer, max_new_tokens=9, progress=False)
    one = Harness(model, tokenizer, max_new_tokens=9, gen_batch_size=1, progress=False)
    assert auto.generate(prompts) == one.generate(prompts)
    longest = max(len(tokenizer(p)["input_ids"]) for p in prompts)
    assert seen == [(longest, 9, 128)]  # planned once, for the longest prompt and the whole budget
    assert auto.cost()["generation_batch_rows"] == 2 and one.cost()["generation_batch_rows"] == 1
