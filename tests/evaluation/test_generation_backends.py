"""Generation engine selection (evaluation/backends): our code paths around vLLM, with a fake
`vllm` module in sys.modules (vLLM itself needs a GPU; benchmarks/gpu_check.sh measures the real one).

The fake follows vLLM's documented offline API (LLM(model=..., dtype=...), SamplingParams,
generate([{"prompt_token_ids": ...}], params)) and decodes greedily with transformers from the
checkpoint folder it was given, so agreeing outputs are the real greedy rows; its `corrupt` mode
shifts every token so the sample check must catch it.
"""
from __future__ import annotations

import importlib.machinery
import sys
import types
from types import SimpleNamespace

import pytest
import torch

from evaluation import backends, models
from evaluation.harness import Generation, Harness

TEXTS = ["the author was born in paris", "her books are about the sea", "he wrote ten novels in rome"]
PROMPTS = [f"Question: {w} {t}?\nAnswer:" for w in ("", "who", "where", "when") for t in TEXTS] + ["Question: sea?"] * 2
TEXT_REQUESTS = [Generation(p) for p in PROMPTS]
ID_REQUESTS = [Generation((1, 5, 6, 7), 9, decode_stop_token=True), Generation((1, 8), 4, decode_stop_token=True)]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return models.build_tiny_llama(TEXTS, tmp_path_factory.mktemp("backends") / "tiny")


@pytest.fixture(scope="module")
def loaded(checkpoint):
    model, tokenizer, _ = models.load_model(str(checkpoint), device=torch.device("cpu"), dtype=torch.float32)
    return model, tokenizer


def fake_vllm(corrupt: bool = False):
    module = types.ModuleType("vllm")
    module.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    module.calls = []

    class SamplingParams:
        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)

    class LLM:
        def __init__(self, model, **kwargs):
            from transformers import AutoModelForCausalLM

            module.calls.append(("LLM", model, kwargs))
            self.model = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, kwargs["dtype"]))

        def generate(self, prompts, params, use_tqdm=True):
            module.calls.append(("generate", len(prompts), params.__dict__))
            outputs = []
            for prompt in prompts:
                ids = torch.tensor([prompt["prompt_token_ids"]])
                row = self.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                          max_new_tokens=params.max_tokens, eos_token_id=params.stop_token_ids,
                                          pad_token_id=0)[0, ids.shape[1]:].tolist()
                cut = next((i + 1 for i, t in enumerate(row) if t in params.stop_token_ids), len(row))
                row = [(t + 1) % self.model.config.vocab_size if corrupt else t for t in row[:cut]]
                stopped = bool(row) and row[-1] in params.stop_token_ids
                outputs.append(SimpleNamespace(outputs=[SimpleNamespace(
                    token_ids=row, finish_reason="stop" if stopped else "length", stop_reason=None)]))
            return outputs

    module.LLM, module.SamplingParams = LLM, SamplingParams
    return module


@pytest.fixture
def gpu(monkeypatch):
    """vLLM 'installed' and a 'CUDA GPU': the fake module, cuda_available and mem_get_info patched."""
    def install(corrupt: bool = False):
        module = fake_vllm(corrupt)
        monkeypatch.setitem(sys.modules, "vllm", module)
        monkeypatch.setattr(backends, "cuda_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (60 * 2**30, 80 * 2**30))
        from evaluation.backends import vllm_backend
        monkeypatch.setattr(vllm_backend, "_ENGINES", {})
        return module
    return install


def _harness(loaded, backend):
    model, tokenizer = loaded
    return Harness(model, tokenizer, max_new_tokens=12, gen_batch_size=4, progress=False, backend=backend)


@pytest.fixture(scope="module")
def transformers_outputs(loaded):
    harness = _harness(loaded, "transformers")
    return harness.generate_until(TEXT_REQUESTS), harness.generate_until(ID_REQUESTS)


def test_vllm_is_used_when_importable_with_a_gpu_and_its_sample_matches(loaded, gpu, transformers_outputs, checkpoint):
    fake = gpu()
    harness = _harness(loaded, "auto")
    assert harness.generate_until(TEXT_REQUESTS) == transformers_outputs[0]
    assert harness.generation_backend == "vllm"
    record = harness.selection.record()
    assert record["backend"] == "vllm" and record["requested"] == "auto"
    assert record["sample_check"]["passed"] and record["sample_check"]["prompts"] == backends.SAMPLE_PROMPTS
    assert record["sample_check"]["differing"] == 0
    init = [c for c in fake.calls if c[0] == "LLM"]
    assert len(init) == 1 and init[0][1] == str(checkpoint) and init[0][2]["dtype"] == "float32"
    assert init[0][2]["gpu_memory_utilization"] == pytest.approx(0.8 * 60 / 80, abs=1e-3)
    params = [c[2] for c in fake.calls if c[0] == "generate"]
    assert all(p["temperature"] == 0.0 and p["max_tokens"] == 12 and p["stop_token_ids"] == harness.stop_ids()
               for p in params)
    # after the check the remaining prompts go to vLLM in one call, not in gen_batch_size chunks
    assert [c[1] for c in fake.calls if c[0] == "generate"] == [backends.SAMPLE_PROMPTS, len(set(PROMPTS))]
    assert harness.generate_until(ID_REQUESTS) == transformers_outputs[1]


def test_a_failed_sample_check_falls_back_to_transformers_and_says_why(loaded, gpu, transformers_outputs,
                                                                       monkeypatch):
    gpu(corrupt=True)
    harness = _harness(loaded, "auto")
    pieces = []
    real = Harness._transformers_greedy
    monkeypatch.setattr(Harness, "_transformers_greedy",
                        lambda self, ids, *rest: pieces.append(ids.shape[0]) or real(self, ids, *rest))
    assert harness.generate_until(TEXT_REQUESTS) == transformers_outputs[0]
    # the vLLM-sized call runs in transformers batches of gen_batch_size (after the 8-prompt check)
    assert pieces[0] == backends.SAMPLE_PROMPTS and max(pieces[1:]) == 4 and sum(pieces[1:]) == len(set(PROMPTS))
    assert harness.generation_backend == "greedy-evict"
    record = harness.selection.record()
    assert record["backend"] == "transformers" and not record["sample_check"]["passed"]
    assert record["sample_check"]["differing"] == 8
    assert record["reason"].startswith("sample check failed: 8 of 8 prompts differ from transformers")


def test_auto_without_gpu_or_vllm_falls_back_and_explicit_vllm_fails(loaded, monkeypatch):
    model, _ = loaded
    monkeypatch.setattr(backends, "vllm_importable", lambda: True)
    monkeypatch.setattr(backends, "cuda_available", lambda: False)
    assert backends.select("auto", model).record() == {"requested": "auto", "backend": "transformers",
                                                       "reason": "no CUDA GPU", "sample_check": None}
    with pytest.raises(RuntimeError, match="--generation-backend vllm: no CUDA GPU"):
        backends.select("vllm", model)
    monkeypatch.setattr(backends, "vllm_importable", lambda: False)
    assert "vllm is not installed" in backends.select("auto", model).reason
    assert backends.select("transformers", model).reason == "requested"
    with pytest.raises(ValueError, match="unknown generation backend 'vlm'; accepted: auto, transformers, vllm"):
        backends.select("vlm", model)


@pytest.mark.parametrize("change, reason", [
    (lambda m: setattr(m, "peft_config", {}), "LoRA/PEFT adapters"),
    (lambda m: setattr(m, "edits_prompt_positions", True), "GRUN generation-time edits"),
    (lambda m: setattr(m.generation_config, "repetition_penalty", 1.3), "generation_config changes greedy"),
    (lambda m: setattr(m.config, "_name_or_path", "tiny-llama"), "not loaded from a local Hugging Face checkpoint"),
])
def test_models_vllm_cannot_reproduce_fall_back_under_either_request(checkpoint, gpu, change, reason):
    gpu()
    model, _, _ = models.load_model(str(checkpoint), device=torch.device("cpu"), dtype=torch.float32)
    change(model)
    for choice in ("auto", "vllm"):
        selection = backends.select(choice, model)
        assert selection.backend == "transformers" and reason in selection.reason


def test_request_block_collects_the_selections_for_the_evaluator_block(loaded):
    with backends.request("transformers") as made:
        assert backends.requested() == "transformers"
        _harness(loaded, None).generate_until(TEXT_REQUESTS[:2])
    assert backends.requested() == "auto"
    assert backends.summary(made, "transformers") == {"requested": "transformers", "backend": "transformers",
                                                      "reason": "requested", "sample_check": None}
    assert backends.summary([], "auto")["reason"] == "no generation pass"


def test_compare_sample_ignores_stop_tokens_and_counts_early_differences():
    stop = [2]
    same = backends.compare_sample([[5, 6, 2], [7]], [[5, 6], [7]], stop, compare_tokens=4)
    assert same["passed"] and same["differing"] == 0
    late = backends.compare_sample([[5, 6, 7, 8, 9]], [[5, 6, 7, 8, 1]], stop, compare_tokens=4)
    assert late["differing"] == 0  # beyond the compared prefix
    early = backends.compare_sample([[5, 6, 7], [1], [1], [1]], [[5, 9, 7], [1], [1], [1]], stop, compare_tokens=4)
    assert early["differing"] == 1 and early["first_difference"] == {"prompt": 0, "token": 1} and early["passed"]
    two = backends.compare_sample([[5], [6], [1], [1]], [[4], [3], [1], [1]], stop, compare_tokens=4)
    assert two["differing"] == 2 and not two["passed"]  # 2/4 > 0.25
    shorter = backends.compare_sample([[5, 6, 2]], [[5, 2]], stop, compare_tokens=4)
    assert shorter["differing"] == 1 and shorter["first_difference"] == {"prompt": 0, "token": 1}
