"""Greedy decoding with per-row eviction returns exactly what `model.generate` returns."""
from __future__ import annotations

import pytest
import torch

from evaluation import greedy, growing_cache, models
from evaluation.benchmarks.tofu.data import TofuData
from evaluation.greedy import greedy_decode, plain_greedy_model
from evaluation.harness import Generation, Harness
from evaluation.benchmarks.tofu.data import vocabulary_texts


@pytest.fixture(scope="module")
def tiny(tiny_folder, tmp_path_factory):
    torch.set_num_threads(1)
    folder = models.build_tiny_llama(vocabulary_texts(TofuData(tiny_folder)),
                                     tmp_path_factory.mktemp("greedy") / "m", seed=2)
    return models.load_model(str(folder))


PROMPTS = ["Question: Who wrote Emma?\nAnswer: ", "Question: What is the capital of Peru?\nAnswer: ",
           "Question: Which award did Amara Lisbon win, and in which year was it given?\nAnswer: ",
           "Question: Name two books.\nAnswer: "]


def _generate_reference(model, tokenizer, prompts, budget, stops):
    tokenizer.padding_side = "left"
    inputs = tokenizer(prompts, return_tensors="pt", padding=True)
    output = model.generate(**inputs, do_sample=False, max_new_tokens=budget, eos_token_id=stops,
                            pad_token_id=tokenizer.pad_token_id)
    rows = []
    for row in output[:, inputs["input_ids"].shape[1]:].tolist():
        cut = next((i + 1 for i, t in enumerate(row) if t in stops), len(row))
        rows.append(row[:cut])
    return inputs, rows


# growth step 2: the in-place cache reallocates every other step; evict fraction 0.6: finished rows
# stay in the batch (their tokens ignored) until 3 of 4 are done
@pytest.mark.parametrize(("growth_step", "evict_fraction"), [(128, 1 / 8), (2, 1 / 8), (128, 0.6)])
def test_greedy_with_eviction_equals_generate(tiny, monkeypatch, growth_step, evict_fraction):
    monkeypatch.setattr(growing_cache, "GROWTH_STEP", growth_step)
    monkeypatch.setattr(greedy, "EVICT_FRACTION", evict_fraction)
    model, tokenizer, _ = tiny
    # frequent tokens as extra stops, so rows finish at different steps and get evicted mid-batch
    inputs = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    first = model(**inputs).logits[:, -1].argmax(-1).tolist()
    stops = sorted({tokenizer.eos_token_id, first[1], first[3]})
    inputs, expected = _generate_reference(model, tokenizer, PROMPTS, 12, stops)
    tokens, processed = greedy_decode(model, inputs["input_ids"], inputs["attention_mask"], 12, stops)
    assert tokens == expected
    assert any(len(t) < 12 for t in tokens) and any(len(t) == 12 for t in tokens)  # eviction happened
    assert processed < inputs["input_ids"].numel() + 12 * len(PROMPTS)


def test_harness_generation_is_the_same_with_and_without_eviction(tiny):
    model, tokenizer, _ = tiny
    fast = Harness(model, tokenizer, max_new_tokens=10, gen_batch_size=3, progress=False)
    slow = Harness(model, tokenizer, max_new_tokens=10, gen_batch_size=3, progress=False, evict_finished=False)
    assert fast.generation_backend == "greedy-evict" and slow.generation_backend == "transformers-generate"
    requests = [Generation(p) for p in PROMPTS]
    assert fast.generate_until(requests) == slow.generate_until(requests)
    assert fast.tokens_generated == slow.tokens_generated > 0


def test_models_with_logits_processors_keep_generate(tiny):
    model, _, _ = tiny
    assert plain_greedy_model(model)
    model.generation_config.repetition_penalty = 1.3
    try:
        assert not plain_greedy_model(model)
    finally:
        model.generation_config.repetition_penalty = 1.0


def test_growing_layer_holds_what_the_dynamic_layer_holds(monkeypatch):
    from transformers.cache_utils import DynamicLayer

    monkeypatch.setattr(growing_cache, "GROWTH_STEP", 3)
    torch.manual_seed(0)
    grown, plain = growing_cache.GrowingLayer(), DynamicLayer()
    rows = 5
    for step in range(20):
        width = 4 if step == 0 else 1
        keys, values = torch.randn(rows, 2, width, 8), torch.randn(rows, 2, width, 8)
        got, want = grown.update(keys, values), plain.update(keys, values)
        assert all(torch.equal(a, b) for a, b in zip(got, want))
        if step in (6, 11):  # evict rows, as greedy_decode does when sequences stop
            keep = torch.tensor([0, 2, 3][:rows - 1] if rows > 3 else [1])
            grown.batch_select_indices(keep)
            plain.batch_select_indices(keep)
            rows = len(keep)
    assert grown.get_seq_length() == plain.get_seq_length() == 23


def test_growing_cache_only_for_plain_dynamic_layers(tiny):
    model, _, _ = tiny
    cache = growing_cache.growing_cache(model)
    assert cache is not None and all(isinstance(layer, growing_cache.GrowingLayer) for layer in cache.layers)
    from transformers import Gemma2Config, Gemma2ForCausalLM

    sliding = Gemma2ForCausalLM(Gemma2Config(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                             num_attention_heads=2, num_key_value_heads=1, head_dim=8,
                                             sliding_window=4))
    assert growing_cache.growing_cache(sliding) is None
