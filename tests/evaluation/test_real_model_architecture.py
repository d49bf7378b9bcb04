"""SmolLM2-135M-Instruct's architecture through the suite, on a tiny random model of the same config
family (tests/evaluation/smollm_twin.py): tied embeddings on the head-on-labelled-positions path,
grouped-query attention in the growing generation cache, the chat template's EOS as a stop token,
memory-sized batches with SmolLM2's 49k vocabulary, GRUN's layers on a 30-block model, LoRA's target
modules, and every benchmark's evaluator (WMDP through lm-eval's HFLM) under --item-cap."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation import benchmarks, models
from evaluation.harness import Continuation, Generation, Harness
from evaluation.prompts import get_format
from tests.evaluation import smollm_twin

QUESTIONS = ["Who wrote Emma?", "Where and when was Amara Lisbon born, and what did she write?", "Why?"]
ANSWERS = ["Jane Austen wrote it.", "Oslo, Norway, in 1950.", "Because."]
TEXTS = QUESTIONS * 20 + ANSWERS * 20
# SmolLM2-135M-Instruct's config.json (as converted from the GGUF) without the weights
SMOLLM2_CONFIG = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                      num_attention_heads=9, num_key_value_heads=3, head_dim=64, tie_word_embeddings=True)


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    folder = smollm_twin.build(tmp_path_factory.mktemp("twin") / "model", TEXTS)
    model, tokenizer, fmt = models.load_model(str(folder), dtype="float32")
    return folder, model, tokenizer, fmt


def test_twin_has_the_real_config_family(twin):
    _, model, tokenizer, fmt = twin
    config = model.config
    assert config.model_type == "llama" and config.tie_word_embeddings
    assert config.num_attention_heads == 3 and config.num_key_value_heads == 1
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert fmt.name == "chat-template" and tokenizer.eos_token_id == 2


@pytest.mark.parametrize("share_prefixes", [True, False])
def test_tied_head_on_labelled_positions_equals_the_full_forward(twin, share_prefixes):
    _, model, tokenizer, fmt = twin
    pairs = [(fmt.prompt(q, tokenizer), a) for q, a in zip(QUESTIONS, ANSWERS)]
    pairs.append((pairs[0][0], "Someone else wrote it."))  # a shared prompt: the prefix-cache path
    harness = Harness(model, tokenizer, progress=False, share_prefixes=share_prefixes)
    scores = dict(zip(pairs, harness.loglikelihood([Continuation(p, a) for p, a in pairs])))
    from evaluation.encoding import encode_prompt_continuation

    for prompt, answer in pairs:
        encoded = encode_prompt_continuation(tokenizer, prompt, answer, 512)
        with torch.no_grad():
            logits = model(input_ids=encoded["input_ids"][None]).logits[0, :-1].float()
        labels = encoded["labels"][1:]
        mask = labels != -100
        expected = torch.log_softmax(logits[mask], -1).gather(1, labels[mask][:, None])[:, 0].numpy()
        np.testing.assert_allclose(scores[(prompt, answer)].logprobs, expected, rtol=1e-4, atol=1e-5)
        assert scores[(prompt, answer)].target_ids[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_gqa_growing_cache_generation_equals_generate(twin):
    _, model, tokenizer, fmt = twin
    prompts = [fmt.prompt(q, tokenizer) for q in QUESTIONS]  # different lengths: a left-padded batch
    harness = Harness(model, tokenizer, progress=False, max_new_tokens=12, gen_batch_size=3)
    texts = {p: t.strip() for p, t in zip(prompts, harness.generate_until(
        [Generation(p, decode_stop_token=True) for p in prompts]))}
    for prompt in prompts:
        encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        out = model.generate(**encoded, max_new_tokens=12, do_sample=False, eos_token_id=harness.stop_ids(),
                             pad_token_id=tokenizer.pad_token_id)
        expected = tokenizer.decode(out[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True).strip()
        assert texts[prompt] == expected


def test_the_chat_templates_turn_end_stops_generation(twin):
    _, model, tokenizer, _ = twin
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in Harness(model, tokenizer, progress=False).stop_ids()
    model.generation_config.eos_token_id = 0  # a model whose generation config names another EOS
    try:
        assert {0, im_end} <= set(Harness(model, tokenizer, progress=False).stop_ids())
    finally:
        model.generation_config.eos_token_id = 2


def test_generation_batches_count_the_kv_heads_and_the_49k_vocabulary():
    from transformers import LlamaConfig

    from evaluation import generation_batch

    config = LlamaConfig(**SMOLLM2_CONFIG)
    # grouped-query attention: the cache holds 3 KV heads per layer, not 9
    assert generation_batch.kv_bytes_per_position(config, 4) == 2 * 30 * 3 * 64 * 4
    row = generation_batch.bytes_per_row(config, 4, 96, 296)
    assert row > 2 * 49152 * 4  # at least the logits row of the vocabulary
    assert row < 64 * 2 ** 20   # and still tens of rows per GiB


def test_lm_eval_batches_are_sized_by_memory_for_a_49k_vocabulary(twin, monkeypatch):
    from transformers import LlamaConfig

    from evaluation import generation_batch
    from evaluation.benchmarks.wmdp import scoring

    config = LlamaConfig(**SMOLLM2_CONFIG)
    per_row = scoring.scoring_bytes_per_row(config, 4, 1400)  # the longest WMDP-cyber question of the first 5
    assert per_row > 1400 * 49152 * 4 * 3  # full logits, their log-softmax and a copy
    _, model, tokenizer, _ = twin
    monkeypatch.setattr(model.config, "vocab_size", 49152)  # the twin sized like the real model's head
    budget = 10 * scoring.scoring_bytes_per_row(model.config, 4, 500)
    monkeypatch.setattr(generation_batch, "free_bytes", lambda device: budget)
    assert scoring.scoring_rows(model, 500, 32) == 10
    assert scoring.scoring_rows(model, 10, 32) == 32
    lm = scoring.in_memory_lm(model, tokenizer, 32)
    requests = [(None, [1] * length, [2]) for length in (500, 499, 300, 10, 10, 10)]  # the twin's context: 512
    sizes = [lm._batch_scheduler(i, requests) for i in range(len(requests))]
    assert sizes[0] == sizes[1] == sizes[2] == scoring.scoring_rows(model, 500, 32) < 32  # fixed within a batch
    assert scoring.in_memory_lm(model, tokenizer, 1).batch_size == 1  # GRUN without a suffix: one at a time


def test_scoring_batches_are_sized_by_memory_and_score_the_same(twin, monkeypatch):
    from evaluation import generation_batch

    _, model, tokenizer, fmt = twin
    pairs = [(fmt.prompt(q, tokenizer), a) for q in QUESTIONS for a in ANSWERS]
    requests = [Continuation(p, a) for p, a in pairs]
    full = dict(zip(pairs, Harness(model, tokenizer, progress=False, share_prefixes=False).loglikelihood(requests)))
    longest = max(len(tokenizer(p + a)["input_ids"]) for p, a in pairs) + 1
    per_row = generation_batch.bytes_per_row(model.config, 4, longest, longest)
    monkeypatch.setattr(generation_batch, "free_bytes", lambda device: 2 * per_row)  # two rows fit
    harness = Harness(model, tokenizer, progress=False, share_prefixes=False)
    sizes = []
    original = Harness._score_batch
    monkeypatch.setattr(Harness, "_score_batch", lambda self, batch, moments=None: (
        sizes.append(batch["input_ids"].shape[0]), original(self, batch, moments))[1])
    small = dict(zip(pairs, harness.loglikelihood(requests)))
    assert max(sizes) <= 2 and sum(sizes) == len(pairs)  # was one batch of batch_size 32
    for pair in pairs:
        np.testing.assert_allclose(small[pair].logprobs, full[pair].logprobs, rtol=1e-5, atol=1e-6)
    assert generation_batch.forward_rows(model, longest, 32, logits_bytes_per_position=4) == 1  # + full logits


def test_grun_default_layers_fit_a_30_block_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    from methods.parametrizations.grun import GRUN, default_layers

    assert default_layers(32) == [20, 25, 31] and default_layers(30) == [19, 23, 29]
    config = LlamaConfig(**{**SMOLLM2_CONFIG, "vocab_size": 64, "hidden_size": 24, "intermediate_size": 48,
                            "num_attention_heads": 3, "num_key_value_heads": 1, "head_dim": 8})
    model = LlamaForCausalLM(config)
    grun = GRUN()
    grun.prepare(model, needs_reference=False)
    assert grun.edits.layers == [19, 23, 29]
    out = model(input_ids=torch.tensor([[1, 5, 6, 2]]))
    assert torch.isfinite(out.logits).all()


def test_lora_targets_every_linear_of_the_architecture(twin):
    from methods.parametrizations.lora import LoRA

    folder, _, _, _ = twin
    model, _, _ = models.load_model(str(folder), dtype="float32")
    wrapped = LoRA().prepare(model, needs_reference=False)
    adapted = {name.split(".lora_A")[0].rsplit(".", 1)[-1] for name, _ in wrapped.named_parameters() if "lora_A" in name}
    assert adapted == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    # tied embeddings: the output head is the input embedding, never adapted on its own
    assert not any("lm_head" in name and "lora" in name for name, _ in wrapped.named_parameters())


@pytest.mark.slow
@pytest.mark.parametrize("benchmark,split", [("wmdp-tiny", "bio"), ("muse-tiny", "news"), ("rwku-tiny", "target-1")])
def test_every_evaluator_runs_the_architecture_capped(twin, tmp_path, benchmark, split):
    from evaluation import evaluate

    folder, _, _, _ = twin
    data = benchmarks.get(benchmark).generate(tmp_path / "data")
    document = evaluate.run(evaluate.EvaluationSpec(
        str(folder), benchmark, str(data), split, None, tmp_path / "out", item_cap=2, progress=False))
    assert document["evaluator"]["item_cap"] == 2
    values = [v for v in document["metrics"].values() if isinstance(v, float)]
    assert values and all(math.isfinite(v) for v in values)


@pytest.mark.slow
def test_token_statistics_of_a_49k_vocabulary_stay_in_bounded_memory(tmp_path):
    """Per-block result tensors kept between the freed [rows, vocab] blocks fragmented glibc's heap: a
    capped MUSE run of SmolLM2 reached 11 GB resident in this loop (0.5 GB of live data)."""
    import subprocess
    import sys

    script = tmp_path / "probe.py"
    script.write_text(
        "import resource, torch\n"
        "from evaluation.token_statistics import token_statistics\n"
        "torch.manual_seed(0)\n"
        "head = torch.nn.Linear(64, 49152, bias=False)\n"
        "rows, targets = torch.randn(3000, 64), torch.randint(0, 49152, (3000,))\n"
        "start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "with torch.inference_mode():\n"
        "    token_statistics(rows, targets, head)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) // 1024)\n")
    import os

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    grown_mb = int(subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                                  check=True).stdout.strip())
    assert grown_mb < 200  # one block is 2 MB; the old loop grew by ~5 MB per block (300 blocks here)
