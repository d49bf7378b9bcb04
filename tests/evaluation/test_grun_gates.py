"""GRUN gate separation measured on a tiny random Llama with GRUN edits."""
from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from evaluation import grun_gates
from methods.parametrizations.grun import GRUNEdits


def _model():
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2)).eval()
    edits = GRUNEdits(16, [0, 1], 2, "linear")
    edits.attach(model)
    model.grun = edits
    return model


def _example(ids, prompt_len):
    ids = torch.tensor(ids)
    labels = ids.clone()
    labels[:prompt_len] = -100
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def test_gate_values_follow_the_gate_and_auc_separates():
    model = _model()
    examples = [_example([1, 2, 3, 4, 5], 3), _example([6, 7, 8], 2)]
    for layer in model.grun.interventions.values():
        torch.nn.init.zeros_(layer.gate.weight)
        torch.nn.init.constant_(layer.gate.bias, 3.0)
    values = grun_gates.gate_values(model, examples, pad_token_id=0)
    assert len(values) == 2 and all(abs(v - torch.sigmoid(torch.tensor(3.0)).item()) < 1e-6 for v in values)
    summary = grun_gates.separation([0.9, 0.8, 0.7], [0.1, 0.75])
    assert abs(summary["auc"] - 5 / 6) < 1e-12 and summary["n_forget"] == 3 and abs(summary["retain_mean"] - 0.425) < 1e-12
    assert grun_gates.separation([0.5], [])["auc"] is None
