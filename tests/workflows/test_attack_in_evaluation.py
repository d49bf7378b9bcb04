"""Weight attacks the DAG applies inside the evaluation job (quantize, relearn): on the CPU the
result equals attacking in a job of its own, saving the attacked copy and evaluating that."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from evaluation import benchmarks, models
from evaluation.benchmarks.tofu import tiny as tofu_tiny
from evaluation.benchmarks.tofu.data import vocabulary_texts
from workflows import attack_commands

SPEC = {"benchmark": "tofu-tiny", "dtype": "float32", "hyperparameters": {"max_length": 64}, "model": "tiny-llama",
        "prompt_format": None, "role": "target", "seed": 0, "split": "forget10"}
ATTACKS = [{"name": "quantize", "variant": "int4"},
           {"name": "relearn", "variant": "forget-split", "args": {"lr": 1e-2, "max_steps": 2, "batch_size": 8}}]
TIMINGS = ("seconds", "train_seconds")


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("in_evaluation")
    data = tofu_tiny.write(root / "data")
    model = models.build_tiny_llama(vocabulary_texts(benchmarks.get("tofu-tiny").open(data)), root / "target",
                                    hidden_size=128, intermediate_size=256, num_hidden_layers=1,
                                    num_attention_heads=2, num_key_value_heads=2)
    return root, data, model


@pytest.mark.skipif(torch.cuda.is_available(), reason="bit-equal on the CPU; GPU kernels and bf16 evaluation vary")
@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a["name"])
def test_attacking_in_the_evaluation_job_equals_a_job_of_its_own(target, attack):
    root, data, model = target
    entry = attack_commands.entry_from_json(json.dumps(attack))
    assert entry.build().applied_in_evaluation and not entry.own_job
    out = root / entry.label
    attack_commands.attack(SPEC, entry, str(model), None, str(data), out / "attacked", out / "attack.json")
    separate = attack_commands.evaluate_attack(SPEC, entry, str(out / "attacked"), out / "attack.json", None,
                                               str(data), out / "separate", variant="full")
    inside = attack_commands.evaluate_attack(SPEC, entry, str(model), None, None, str(data), out / "inside",
                                             variant="full")
    assert inside["metrics"] == separate["metrics"] and inside["status"]["state"] == "ok"
    pd.testing.assert_frame_equal(pd.read_parquet(out / "inside" / "per_item.parquet"),
                                  pd.read_parquet(out / "separate" / "per_item.parquet"))
    records = [{k: v for k, v in d["metric_details"]["attack"]["record"].items() if k not in TIMINGS}
               for d in (inside, separate)]
    assert records[0] == records[1] and records[0]
    assert inside["cost"]["attack_seconds"] > 0


def test_an_attack_with_a_job_of_its_own_needs_its_record(target, monkeypatch):
    root, data, model = target
    from methods.attacks.relearn import Relearn

    monkeypatch.setattr(Relearn, "applied_in_evaluation", False)
    entry = attack_commands.entry_from_json(json.dumps(ATTACKS[1]))
    assert entry.own_job
    with pytest.raises(ValueError, match="relearn-forget-split runs in a job of its own: pass --record"):
        attack_commands.evaluate_attack(SPEC, entry, str(model), None, None, str(data), root / "refused")
