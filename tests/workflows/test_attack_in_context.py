"""prompt/in-context through `ubench evaluate-attack` on tofu-tiny: the TOFU evaluator scores every
question behind k forget pairs of other items, and the result records how they were drawn."""
from __future__ import annotations

import pandas as pd
import torch

from common import contract
from evaluation import models
from evaluation.benchmarks.tofu import tiny as tofu_tiny
from evaluation.benchmarks.tofu.data import TofuData, vocabulary_texts
from workflows import attack_commands

SPEC = {"benchmark": "tofu-tiny", "dtype": "float32", "hyperparameters": {}, "model": "tiny-llama",
        "prompt_format": None, "role": "target", "seed": 0, "split": "forget10"}


def test_in_context_evaluation_records_its_draw_and_changes_the_scores(tmp_path):
    torch.set_num_threads(1)
    data = tofu_tiny.write(tmp_path / "data")
    base = models.build_tiny_llama(vocabulary_texts(TofuData(data)), tmp_path / "base", seed=0)
    documents = {}
    for label, attack in (("prefix", '{"name": "prompt", "variant": "prefix"}'),
                          ("in-context", '{"name": "prompt", "variant": "in-context", "args": {"k": 2}}')):
        entry = attack_commands.entry_from_json(attack)
        documents[label] = attack_commands.evaluate_attack(SPEC, entry, str(base), None, None, str(data),
                                                           tmp_path / label, variant="full", item_cap=3,
                                                           progress=False)
    document = contract.read_metrics(tmp_path / "in-context" / "metrics.json")
    assert document["status"]["state"] == "ok"
    assert document["identity"]["attack"] == {"name": "prompt", "variant": "in-context", "args": {"k": 2, "seed": 0}}
    forget_pool = len(TofuData(data)["forget10"])
    assert document["evaluator"]["prompt_template"]["demonstrations"] == {"k": 2, "seed": 0, "pool": forget_pool}
    assert document["evaluator"]["prompt_template"]["name"] == "phi+in-context"
    table = pd.read_parquet(tmp_path / "in-context" / "per_item.parquet")
    other = pd.read_parquet(tmp_path / "prefix" / "per_item.parquet")
    forget = table[table.eval_set == "forget"]
    assert len(forget) == 3 and forget["num_tokens"].tolist() == other[other.eval_set == "forget"]["num_tokens"].tolist()
    assert not forget["gt_loss_mean"].equals(other[other.eval_set == "forget"]["gt_loss_mean"])
