"""Weight attacks the DAG applies inside the evaluation job (quantize, relearn): on the CPU the
result equals attacking in a job of its own, saving the attacked copy and evaluating that (what an
entry with `keep_model: true` does)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from evaluation import benchmarks, models
from evaluation.benchmarks.tofu import tiny as tofu_tiny
from evaluation.benchmarks.tofu.data import vocabulary_texts
from workflows import attack_commands, grid
from workflows.layout import Layout

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


def _reference_jobs(keep_model: bool):
    """The quantize/int8 entry of a tofu-tiny grid and evaluate_attack_reference's inputs for its target."""
    config = {"models": {"tiny-llama": {"base": "tiny-llama"}},
              "experiments": [{"benchmark": "tofu-tiny", "splits": ["forget10"], "models": ["tiny-llama"],
                               "objectives": ["ga"], "rectifiers": ["none"],
                               "attacks": [{"name": "quantize", "variant": "int8", "keep_model": keep_model}]}]}
    layout = Layout(grid.build(config))
    wildcards = SimpleNamespace(benchmark="tofu-tiny", split="forget10", model="tiny-llama", role="target",
                                attack="quantize-int8")
    return layout.reference_attack_entry(wildcards), layout.reference_attack_inputs(wildcards)


@pytest.mark.skipif(torch.cuda.is_available(), reason="bit-equal on the CPU; GPU kernels and bf16 evaluation vary")
def test_keeping_the_quantized_model_changes_no_result(target):
    root, data, model = target
    documents = {}
    for keep in (False, True):
        entry, inputs = _reference_jobs(keep)
        assert entry.own_job == keep == ("record" in inputs)
        out = root / f"keep-{keep}"
        record = None
        if keep:  # the `attack_reference` job, then evaluate_attack_reference with --record
            record = out / "attack.json"
            written = attack_commands.attack(SPEC, entry, str(model), None, str(data), out / "model", record)
            assert written["model"] == str(out / "model") == json.loads(record.read_text())["model"]
        documents[keep] = attack_commands.evaluate_attack(SPEC, entry, str(out / "model") if keep else str(model),
                                                          record, None, str(data), out / "results", variant="full")
    kept, plain = documents[True], documents[False]
    assert (root / "keep-True" / "model" / "config.json").is_file(), "the kept attacked model is on disk"
    assert not (root / "keep-False" / "model").exists()
    assert kept["status"]["state"] == plain["status"]["state"] == "ok"
    assert kept["metrics"] == plain["metrics"] and kept["metrics"]
    assert kept["identity"] == plain["identity"] and "keep_model" not in json.dumps(kept["identity"])
    pd.testing.assert_frame_equal(pd.read_parquet(root / "keep-True" / "results" / "per_item.parquet"),
                                  pd.read_parquet(root / "keep-False" / "results" / "per_item.parquet"))
    assert kept["metric_details"]["attack"]["attacked_model"] == str(root / "keep-True" / "model")
    assert "attacked_model" not in plain["metric_details"]["attack"]
