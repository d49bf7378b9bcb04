"""The tiny twin shows what the attacks are for (issue #26): on tofu-tiny, relearning on half of the
forget questions raises a GA-unlearned model's knowledge of the other half, and int8 quantization
leaves the fine-tuned target's metrics close to unquantized."""
from __future__ import annotations

import json

import pytest

from common import contract
from evaluation import evaluate, finetune
from evaluation.benchmarks.tofu import tiny as tofu_tiny
from workflows import attack_commands, commands

GA = {"benchmark": "tofu-tiny", "split": "forget10", "model": "tiny-llama", "objective": "ga", "rectifier": "none",
      "parametrization": "full", "seed": 0, "prompt_format": None, "dtype": "float32",
      "hyperparameters": {"lr": 1e-3, "max_steps": 30, "max_length": 64, "batch_size": 8, "grad_accum": 1,
                          "weight_decay": 0.0, "scheduler": "constant", "max_grad_norm": 1.0}}
RELEARN = {"name": "relearn", "variant": "forget-split", "args": {"lr": 3e-3, "epochs": 5, "batch_size": 8}}


@pytest.fixture(scope="module")
def unlearned(tmp_path_factory):
    root = tmp_path_factory.mktemp("attack_effect")
    data = tofu_tiny.write(root / "data")
    finetune.run("tofu-tiny", str(data), "full", "tiny-llama", root / "target", progress=False)
    evaluate.run(evaluate.EvaluationSpec(
        str(root / "target"), "tofu-tiny", str(data), "forget10", None, root / "res" / "target",
        identity={"role": "target", "method": "target", "model": "tiny-llama"}, progress=False))
    commands.unlearn(GA, str(data), str(root / "target"), root / "run" / "model", root / "run" / "train_log.jsonl",
                     root / "run" / "train_result.json", threads=1, progress=False)
    commands.evaluate_run(GA, str(root / "run" / "model"), root / "run" / "train_result.json", str(data),
                          root / "res" / "run", progress=False)
    return root, data


@pytest.mark.slow
def test_relearning_half_the_forget_set_raises_knowledge_of_the_other_half(unlearned):
    root, data = unlearned
    entry = attack_commands.entry_from_json(RELEARN)
    record = attack_commands.attack(GA, entry, str(root / "run" / "model"), root / "run" / "train_result.json",
                                    str(data), root / "attacked", root / "attack.json")
    assert record["status"] == "ok" and record["record"]["optimizer_steps"] > 0
    out = root / "res" / "relearn"
    attack_commands.evaluate_attack(GA, entry, str(root / "attacked"), root / "attack.json",
                                    root / "run" / "train_result.json", str(data), out,
                                    run_results=root / "res" / "run", target_results=root / "res" / "target")
    document = contract.read_metrics(out / "metrics.json")
    basis = document["metric_details"]["attack"]["basis"]
    attacked, before, target = (document["metrics"]["forget_prob"], basis["before"]["forget_prob"],
                                basis["target"]["forget_prob"])
    print(json.dumps({"unlearned": before, "relearned": attacked, "target": target}))
    assert target > before + 0.3  # GA forgot the held-out half
    assert attacked > before + 0.05  # relearning the other half brought part of it back (measured: 0 -> 0.13)
    assert document["metric_details"]["attack"]["forget_items"].endswith("held-out questions")


@pytest.mark.slow
def test_int8_quantization_leaves_the_target_close_to_unquantized(unlearned, tmp_path):
    root, data = unlearned
    from evaluation import models
    from methods.registry import ATTACKS

    model, tokenizer, fmt = models.load_model(str(root / "target"))
    ATTACKS.get("quantize")("int8").apply(model, None)
    model.save_pretrained(tmp_path / "int8")
    tokenizer.save_pretrained(tmp_path / "int8")
    models.write_model_card(tmp_path / "int8", "tiny-llama", fmt.name)
    quantized = evaluate.run(evaluate.EvaluationSpec(
        str(tmp_path / "int8"), "tofu-tiny", str(data), "forget10", None, tmp_path / "res",
        identity={"role": "target", "method": "target", "model": "tiny-llama"}, progress=False))
    full = contract.read_metrics(root / "res" / "target" / "metrics.json")
    for name in ("forget_prob", "retain_prob", "forget_rouge", "model_utility"):
        print(name, full["metrics"][name], quantized["metrics"][name])
        assert quantized["metrics"][name] == pytest.approx(full["metrics"][name], abs=0.02), name
