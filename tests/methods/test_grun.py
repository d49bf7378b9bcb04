"""GRUN: gated low-rank edits on a frozen base (orthonormal R, gate off = base, one position,
only edit parameters train, gates separate forget from retain, save/load, any objective × rectifier)."""
import json

import pytest
import torch

from methods.parametrizations.grun import (GRUN, gate_bce, last_attended, load_grun_model,
                                           prompt_end_from_labels, prompt_end_from_suffix, warmup_factor)
from methods.train import TrainConfig, train
from tests.methods.conftest import VOCAB, tiny_llama


def qa(generator, low: int, high: int, prompt: int, answer: int) -> dict:
    """A QA example whose prompt tokens come from [low, high): forget and retain prompts differ."""
    ids = torch.cat([torch.randint(low, high, (prompt,), generator=generator),
                     torch.randint(1, VOCAB, (answer,), generator=generator)])
    labels = ids.clone()
    labels[:prompt] = -100
    return {"input_ids": ids, "attention_mask": torch.ones(len(ids), dtype=torch.long), "labels": labels}


def split_streams(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"forget": [qa(g, 1, VOCAB // 2, 3 + i % 3, 4) for i in range(n)],
            "retain": [qa(g, VOCAB // 2, VOCAB, 3 + i % 3, 4) for i in range(n)]}


def prepared(layers=(1,), gate="linear", rank=2):
    model = tiny_llama()
    grun = GRUN(layers=list(layers), rank=rank, gate=gate)
    return grun.prepare(model, needs_reference=True), grun


def test_rotation_has_orthonormal_rows():
    model, grun = prepared(layers=(0, 1), rank=3)
    for intervention in grun.edits.interventions.values():
        R = intervention.rotate.weight
        assert R.shape == (3, 32)
        torch.testing.assert_close(R @ R.T, torch.eye(3), atol=1e-5, rtol=0)


def test_gate_forced_shut_reproduces_base_model():
    base = tiny_llama()
    model, grun = prepared(layers=(0, 1))
    ids = torch.randint(1, VOCAB, (3, 9))
    with torch.no_grad():
        for intervention in grun.edits.interventions.values():  # make the edit large, so a leak would show
            intervention.learned.bias.fill_(5.0)
        grun.edits.gate_open = 0.0
        shut = model(input_ids=ids).logits
        grun.edits.gate_open = 1.0
        opened = model(input_ids=ids).logits
    torch.testing.assert_close(shut, base(input_ids=ids).logits, atol=0, rtol=0)
    assert (opened - shut).abs().max() > 1e-3


def test_edit_lands_only_at_the_last_prompt_token():
    """One edit after the last block changes the logits at exactly the edited position."""
    model, grun = prepared(layers=(1,))
    g = torch.Generator().manual_seed(0)
    batch = {"input_ids": torch.randint(1, VOCAB, (2, 8), generator=g), "attention_mask": torch.ones(2, 8, dtype=torch.long)}
    batch["labels"] = torch.full((2, 8), -100)
    batch["labels"][0, 3:] = batch["input_ids"][0, 3:]   # prompt of row 0 ends at index 2
    batch["labels"][1, 5:] = batch["input_ids"][1, 5:]   # row 1: index 4
    ends = prompt_end_from_labels(batch["labels"], batch["attention_mask"])
    assert ends.tolist() == [2, 4]
    with torch.no_grad():
        grun.edits.interventions["1"].learned.bias.fill_(3.0)
        grun.edits.gate_open = 1.0
        base = grun.reference_logits(model, batch)
        with grun.edits.at_positions(batch["input_ids"], ends):
            edited = model(**{k: batch[k] for k in ("input_ids", "attention_mask")}).logits
    changed = (edited - base).abs().amax(-1) > 1e-6
    assert changed.tolist() == [[i == 2 for i in range(8)], [i == 4 for i in range(8)]]


def test_prompt_end_helpers():
    mask = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]])
    assert last_attended(mask, 2, 4, "cpu").tolist() == [2, 3]
    ids = torch.tensor([[5, 7, 8, 9, 7, 8], [7, 8, 1, 2, 3, 4]])
    assert prompt_end_from_suffix(ids, [7, 8]).tolist() == [2, 1]      # first occurrence
    assert prompt_end_from_suffix(ids, [9, 9]) is None
    assert warmup_factor(1, 0, 3) == 1.0 and warmup_factor(1, 2, 3) == 0.0 and warmup_factor(4, 2, 3) == 0.5


def test_gate_bce_targets_forget_one_retain_zero():
    big, small = torch.full((4,), 8.0), torch.full((4,), -8.0)
    assert gate_bce(big, small) < 1e-3 < 1.0 < gate_bce(small, big)


def mean_gate(model, grun, stream, layer="1"):
    from methods.data import collate
    batch = collate(stream, 0)
    ends = prompt_end_from_labels(batch["labels"], batch["attention_mask"])
    with torch.no_grad(), grun.edits.recording() as records, grun.edits.at_positions(batch["input_ids"], ends):
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return torch.sigmoid(torch.cat(records[id(batch["input_ids"])])).mean().item()


def test_training_moves_only_edits_and_opens_gates_on_forget(tmp_path):
    streams = split_streams()
    model = tiny_llama()
    with torch.no_grad():  # real residual streams are far larger than a random tiny model's 0.02-std init
        model.model.embed_tokens.weight.normal_(0, 1.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = TrainConfig(objective="npo", rectifier="gru", parametrization="grun", lr=2e-2, max_steps=60,
                         batch_size=8, scheduler="constant", seed=0,
                         objective_args={"beta": 0.1, "forget_weight": 1.0},
                         parametrization_args={"layers": [0, 1], "rank": 2, "gate": "linear", "gate_weight": 10.0})
    result = train(model, streams, config, tmp_path, pad_token_id=0, progress=False)
    assert result.status == "ok", result.reason
    d, r = 32, 2
    per_layer = r * d + (d * r + r) + (d + 1)  # R, (W, b), linear gate
    assert result.trainable_parameters == 2 * per_layer
    after = model.state_dict()
    for name, value in before.items():
        assert torch.equal(after[name], value), f"base weight {name} changed"
    grun = GRUN(layers=[0, 1])
    grun.edits = model.grun
    model.eval()
    forget_gate, retain_gate = mean_gate(model, grun, streams["forget"]), mean_gate(model, grun, streams["retain"])
    assert forget_gate > 0.8 and retain_gate < 0.2, (forget_gate, retain_gate)
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert set(log[0]["losses"]) == {"forget", "retain", "gate"}


@pytest.mark.parametrize("objective,rectifier", [("ga", "none"), ("graddiff", "pcgrad"), ("npo", "none")])
def test_grun_combines_with_objectives_and_rectifiers(tmp_path, objective, rectifier):
    config = TrainConfig(objective=objective, rectifier=rectifier, parametrization="grun", lr=1e-2, max_steps=2,
                         batch_size=4, seed=0, parametrization_args={"layers": [1], "rank": 2, "gate": "mlp_3"})
    model, streams = tiny_llama(), split_streams(8)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    result = train(model, streams, config, tmp_path, pad_token_id=0, progress=False)
    assert result.status == "ok" and result.optimizer_steps == 2
    # the base stays frozen while the edits train: the gate loss (BCE) must fall over the steps
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters() if name in before)
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["update_norm"] > 0 and log[-1]["losses"]["gate"] != log[0]["losses"]["gate"]


def test_save_and_load_reproduce_edited_forward_and_generate(tmp_path):
    streams = split_streams(8)
    model = tiny_llama()
    config = TrainConfig(objective="graddiff", parametrization="grun", lr=1e-2, max_steps=3, batch_size=4,
                         parametrization_args={"layers": [0, 1], "rank": 2, "gate": "linear"})
    train(model, streams, config, tmp_path / "run", pad_token_id=0, progress=False)
    GRUN().save(model, tmp_path / "saved")  # a fresh instance, as workflows.commands does
    saved = json.loads((tmp_path / "saved" / "grun_config.json").read_text())
    assert saved["base_model"] == "base" and saved["layers"] == [0, 1]
    loaded = load_grun_model(tmp_path / "saved")
    model.eval()
    ids = torch.randint(1, VOCAB, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, model(input_ids=ids).logits)
        with loaded.grun.disabled():
            plain = loaded(input_ids=ids).logits
        assert (plain - model(input_ids=ids).logits).abs().max() > 0  # the edits do act
    out = loaded.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False)
    assert out.shape == (2, 10)


def test_bad_layers_and_gate_are_explained():
    with pytest.raises(ValueError, match="do not exist"):
        GRUN(layers=[5]).prepare(tiny_llama(), needs_reference=False)
    with pytest.raises(ValueError, match="gate must be one of"):
        GRUN(gate="mlp_9")


def test_learned_prompt_suffix_places_the_edit_for_plain_forwards(tmp_path):
    """Evaluation calls model(prompt + answer) without labels: the prompt's closing tokens, learned
    in training, locate the last prompt token."""
    g = torch.Generator().manual_seed(0)
    closing = torch.tensor([62, 63])

    def with_closing(example):
        prompt_len = int((example["labels"] == -100).sum())
        ids = torch.cat([example["input_ids"][:prompt_len], closing, example["input_ids"][prompt_len:]])
        labels = torch.cat([torch.full((prompt_len + 2,), -100), example["input_ids"][prompt_len:]])
        return {"input_ids": ids, "attention_mask": torch.ones(len(ids), dtype=torch.long), "labels": labels}

    streams = {k: [with_closing(e) for e in v] for k, v in split_streams(8).items()}
    model = tiny_llama()
    config = TrainConfig(objective="graddiff", parametrization="grun", lr=1e-2, max_steps=2, batch_size=4,
                         parametrization_args={"layers": [1], "rank": 2})
    train(model, streams, config, tmp_path, pad_token_id=0, progress=False)
    assert model.grun.prompt_suffix[-2:] == [62, 63]
    ids = torch.tensor([[5, 6, 62, 63, 9, 10, 11]])
    with torch.no_grad():
        model.grun.gate_open = 1.0
        edited = model(input_ids=ids).logits
        with model.grun.disabled():
            base = model(input_ids=ids).logits
    changed = ((edited - base).abs().amax(-1) > 1e-6)[0].tolist()
    assert changed == [i == 3 for i in range(7)]


def test_extension_config_puts_grun_lora_and_rmu_rows_on_the_grid():
    from workflows import grid
    from pathlib import Path
    config = grid.load_config(Path(__file__).resolve().parents[2] / "config" / "extensions" / "grun_lora_rmu.yaml")
    runs = grid.build(config).runs  # check_names: every objective/parametrization is registered
    methods = {run.method for run in runs}
    assert {"npo+gru+grun", "graddiff+none+lora", "rmu+none+subset"} <= methods
    assert {"ga+none", "simnpo+sago"} <= methods  # the default grid's rows stay: the extension adds
