"""Generation batches sized by memory: the cache arithmetic, the budget, and identical texts."""
from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig

from evaluation import generation_batch, models
from evaluation.benchmarks.tofu.data import TofuData
from evaluation.harness import Generation, Harness
from evaluation.benchmarks.tofu.data import vocabulary_texts

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
    folder = models.build_tiny_llama(vocabulary_texts(TofuData(tiny_folder)),
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
    requests = [Generation(p) for p in prompts]
    assert auto.generate_until(requests) == one.generate_until(requests)
    lengths = sorted((len(tokenizer(p)["input_ids"]) for p in prompts), reverse=True)
    # each batch planned for its longest prompt and the whole budget
    assert seen[0] == (lengths[0], 9, 128) and {s[0] for s in seen} <= set(lengths) and len(seen) >= 3
    assert auto.cost()["generation_batch_rows"] == 2 and one.cost()["generation_batch_rows"] == 1


def _padded_and_filled(lengths, batch, new_tokens):
    width = max(lengths[i] for i in batch) + new_tokens
    return len(batch) * width, sum(lengths[i] + new_tokens for i in batch)


def test_buckets_keep_padding_within_the_waste_bound_and_the_row_cap():
    rng = torch.Generator().manual_seed(0)
    lengths = torch.randint(10, 2000, (300,), generator=rng).tolist()
    buckets = generation_batch.length_buckets(lengths, 30, lambda longest: 4096 // (longest // 64 + 1))
    assert sorted(i for b in buckets for i in b) == list(range(300))
    flat = [lengths[i] for b in buckets for i in b]
    assert flat == sorted(lengths, reverse=True)  # longest first
    for batch in buckets:
        assert len(batch) <= 4096 // (lengths[batch[0]] // 64 + 1)
        padded, filled = _padded_and_filled(lengths, batch, 30)
        assert len(batch) == 1 or padded <= (1 + generation_batch.PADDING_WASTE) * filled


def test_similar_prompts_share_one_batch_and_a_long_one_stays_apart():
    # TOFU-like: prompt lengths 15-60 against a 200-token budget, one batch up to the cap
    assert [len(b) for b in generation_batch.length_buckets([60, 15, 40, 22] * 50, 200, lambda _: 256)] == [200]
    assert [len(b) for b in generation_batch.length_buckets([30] * 600, 200, lambda _: 256)] == [256, 256, 88]
    # RWKU-like: one 1,885-token prompt among short ones does not pad them to its width
    assert generation_batch.length_buckets([24, 1885, 30, 28], 256, lambda _: 256) == [[1], [2, 3, 0]]


def test_a_batch_of_no_rows_is_refused(tiny):
    model, tokenizer, _ = tiny
    with pytest.raises(ValueError, match="gen_batch_size must be a positive number"):
        Harness(model, tokenizer, gen_batch_size=0)
