"""Quantize and relearn on a GRUN run attack the unlearned model as it is used, gates on: the base
weights are attacked, the gated edits are kept (quantize: in their dtype), and the attacked model is
saved and loaded as a GRUN model again, never as the bare base model."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from evaluation import models
from evaluation.benchmarks.tofu import tiny as tofu_tiny
from evaluation.benchmarks.tofu.data import TofuData, vocabulary_texts
from methods.attacks import quantize
from methods.parametrizations.grun import GRUN
from workflows import attack_commands

SPEC = {"benchmark": "tofu-tiny", "split": "forget10", "model": "tiny-llama", "objective": "graddiff",
        "rectifier": "none", "parametrization": "grun", "seed": 0, "hyperparameters": {"max_length": 64}}


@pytest.fixture(scope="module")
def grun_run(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("grun_attack")
    data = tofu_tiny.write(root / "data")
    base = models.build_tiny_llama(vocabulary_texts(TofuData(data)), root / "base", seed=0)
    model, tokenizer, _ = models.load_model(str(base))
    grun = GRUN(layers=[1], rank=2, gate="linear")
    model = grun.prepare(model, needs_reference=False)
    with torch.no_grad():  # open the gate so the edit visibly acts
        for name, p in model.grun.named_parameters():
            p.add_(torch.randn_like(p) * 0.5 + (2.0 if "bias" in name else 0.0))
    run = root / "run"
    grun.save(model, run)
    tokenizer.save_pretrained(str(run))
    shutil.copy(base / models.MODEL_CARD, run / models.MODEL_CARD)
    (root / "train_result.json").write_text(json.dumps({"status": "ok"}))
    return root, data, base, run


def _attack(grun_run, name, attack):
    root, data, _, run = grun_run
    entry = attack_commands.entry_from_json(json.dumps(attack))
    out = root / name
    document = attack_commands.attack(SPEC, entry, str(run), root / "train_result.json", str(data), out / "model",
                                      out / "attack.json")
    assert document["status"] == "ok"
    return document["record"], models.load_model(str(out / "model"))[0]


def _prompt_ids(run):
    model, tokenizer, fmt = models.load_model(str(run))
    return model, tokenizer(fmt.prompt("Who wrote it?", tokenizer), return_tensors="pt")["input_ids"]


def test_quantize_attacks_the_base_weights_and_keeps_the_gated_edits(grun_run):
    _, _, base, run = grun_run
    record, attacked = _attack(grun_run, "int4", {"name": "quantize", "variant": "int4"})
    unlearned, ids = _prompt_ids(run)
    assert hasattr(attacked, "grun") and record["edits_kept_unquantized"] == ["grun"]
    assert record["quantized_layers"] == len(quantize.quantized_linears(unlearned)) == 4 * 7  # the 4 blocks only
    for (name, p), (_, q) in zip(unlearned.grun.state_dict().items(), attacked.grun.state_dict().items()):
        assert p.dtype == q.dtype and torch.equal(p, q), name
    before = dict(unlearned.named_parameters())
    for name, module in quantize.quantized_linears(attacked):
        assert torch.equal(module.weight, quantize.rtn_dequantized(before[f"{name}.weight"], 4, 128)), name
    plain = models.load_model(str(base))[0]
    quantize.Quantize("int4").apply(plain, None)
    with torch.no_grad():  # the attacked model is not the bare quantized base: its gates act
        assert (attacked(input_ids=ids).logits - plain(input_ids=ids).logits).abs().max() > 1e-4


def test_relearn_trains_through_the_gates_and_saves_a_grun_model(grun_run):
    attack = {"name": "relearn", "variant": "forget-split", "args": {"lr": 1e-2, "max_steps": 2, "batch_size": 4}}
    record, attacked = _attack(grun_run, "relearn", attack)
    _, _, _, run = grun_run
    unlearned, ids = _prompt_ids(run)
    assert hasattr(attacked, "grun") and record["optimizer_steps"] == 2
    assert record["edits_trained_with_the_base"] == ["grun"]
    base_moved = any(not torch.equal(p, dict(attacked.named_parameters())[n])
                     for n, p in unlearned.named_parameters() if not n.startswith("grun."))
    assert base_moved
    with torch.no_grad():
        with attacked.grun.disabled():
            bare = attacked(input_ids=ids).logits
        assert (attacked(input_ids=ids).logits - bare).abs().max() > 1e-4  # the edits still act
