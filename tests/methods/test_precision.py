"""Precision follows the config (fp32 master weights, bf16 autocast compute) and memory switches:
a bf16-loaded model trains fp32 masters whose ~1e-5 updates survive, the frozen reference runs
under the same autocast (NPO's first loss is exactly its equal-logits value), activation
checkpointing changes no result, buffers are the only gradient memory, and LoRA/GRUN refuse a
sharded launch before training."""
import math

import pytest
import torch

from methods import precision
from methods.buffers import TaskBuffers
from methods.data import collate
from methods.registry import OBJECTIVES
from methods.train import TrainConfig, check_parametrization_launch, train
from tests.methods.conftest import VOCAB, make_streams, tiny_llama


def config(**kw):
    base = dict(objective="graddiff", rectifier="pcgrad", lr=1e-5, max_steps=2, batch_size=2, grad_accum=1,
                seed=3, max_grad_norm=None, scheduler="constant")
    return TrainConfig(**{**base, **kw})


def test_bf16_model_trains_fp32_masters_and_keeps_small_updates(tmp_path):
    model = tiny_llama().to(torch.bfloat16)
    start = {k: v.detach().float().clone() for k, v in model.named_parameters()}
    result = train(model, make_streams(), config(compute_dtype="bfloat16"), tmp_path, pad_token_id=0,
                   progress=False)
    assert result.status == "ok"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert result.precision == {"master_weights": ["float32"], "compute": "bfloat16", "autocast": True,
                                "frozen_weights": [], "reference": None, "gradient_buffers": "float32",
                                "optimizer_states": "float32"}
    weight = "model.layers.0.mlp.up_proj.weight"
    moved = dict(model.named_parameters())[weight].detach() - start[weight]
    # AdamW's first steps move every coordinate by ~lr: far below bf16's spacing at |w| ~ 0.02
    assert (moved.abs() > 0).float().mean() > 0.9
    assert moved.abs().max() < 1e-4
    rounded = (start[weight] + moved).to(torch.bfloat16).float() - start[weight]
    assert (rounded == 0).float().mean() > 0.5  # what bf16 weights would have kept of the same step


def test_reference_runs_under_the_same_autocast(tmp_path):
    """NPO at step 1: the model and its frozen copy are the same weights, so the loss is
    -(2/β)·log σ(β·Δ) with Δ (the gap of their mean token NLLs) zero up to rounding: (2/β)·log 2.

    How close is "up to rounding" follows from bf16: both forwards produce bf16 logits, each known
    to bf16's unit roundoff 2⁻⁸ (8 significant bits) of its size, and they round differently where
    their elementwise ops differ (fp32 master weights vs the bf16 frozen copy) and where the CPU's
    kernels order the sums differently (AVX2 and AVX-512 give 13.86281 and 13.86293). The loss
    moves one-for-one with Δ (d loss/dΔ = -1 at Δ = 0), and a near-uniform random model's NLL is
    about log V, so |loss - (2/β)·log 2| <= 2⁻⁸·log V. That bound cannot tell a reference run in
    fp32 outside the autocast (a gap of ~1e-4 here, below the kernel noise), so the hooks check the
    autocast itself: every lm_head forward, of the model and of its copy, runs under bf16 autocast."""
    beta = 0.1
    model = tiny_llama().to(torch.bfloat16)
    seen = []  # deep-copied with the model, so the frozen reference reports here too
    model.lm_head.register_forward_hook(lambda module, args, out: seen.append(
        (id(module), torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu"), out.dtype)))
    train(model, make_streams(), TrainConfig(objective="npo", objective_args={"beta": beta}, lr=1e-5, max_steps=1,
                                             batch_size=2, compute_dtype="bfloat16"),
          tmp_path, pad_token_id=0, progress=False)
    import json
    row = json.loads((tmp_path / "train_log.jsonl").read_text().splitlines()[0])
    bf16_unit_roundoff = 2.0 ** -8
    assert row["losses"]["forget"] == pytest.approx(2 / beta * math.log(2), abs=bf16_unit_roundoff * math.log(VOCAB))
    assert len({module for module, _, _ in seen}) == 2, "the model and its frozen reference both forward"
    assert {(autocast, dtype) for _, autocast, dtype in seen} == {(torch.bfloat16, torch.bfloat16)}


def test_float16_compute_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="loss scaling"):
        config(compute_dtype="float16").validate()


def test_activation_checkpointing_changes_no_parameter(tmp_path):
    trained = []
    for flag in (False, True):
        model = tiny_llama()
        train(model, make_streams(), config(rectifier="gru", lr=1e-3, gradient_checkpointing=flag),
              tmp_path / str(flag), pad_token_id=0, progress=False)
        trained.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    for k in trained[0]:
        torch.testing.assert_close(trained[0][k], trained[1][k], rtol=1e-5, atol=1e-6)


def test_buffers_are_the_only_gradient_memory(streams):
    """fp32 parameters backward into buffer views (no `.grad` left) and get the update as a view."""
    model = tiny_llama()
    named = list(model.named_parameters())
    buffers = TaskBuffers(named, ["forget", "retain"], "cpu")
    losses = OBJECTIVES.get("graddiff")().losses(
        model, {s: collate(streams[s][:2], 0) for s in ("forget", "retain")}, None)
    buffers.backward("forget", losses["forget"], retain_graph=True)
    buffers.backward("retain", losses["retain"])
    assert all(p.grad is None for _, p in named)
    buffers.set_param_grads(buffers.buffers["forget"])
    views = buffers.views(buffers.buffers["forget"])
    assert all(p.grad.data_ptr() == v.data_ptr() for (_, p), v in zip(named, views))


def test_upcast_trainable_changes_only_non_fp32():
    a, b = torch.nn.Parameter(torch.ones(2, dtype=torch.bfloat16)), torch.nn.Parameter(torch.ones(2))
    assert precision.upcast_trainable([("a", a), ("b", b)]) == ["a"]
    assert a.dtype == b.dtype == torch.float32


@pytest.mark.parametrize("name", ["lora", "grun"])
def test_lora_and_grun_refuse_sharding_before_training(name):
    check_parametrization_launch(name, sharded=False)
    with pytest.raises(NotImplementedError, match="ddp.yaml"):
        check_parametrization_launch(name, sharded=True)


def test_activation_checkpointing_changes_no_grun_edit(tmp_path):
    """GRUN's forward hooks run again when a checkpointed block is recomputed: same result."""
    trained = []
    for flag in (False, True):
        model = tiny_llama()
        train(model, make_streams(), TrainConfig(objective="graddiff", parametrization="grun", lr=1e-2,
                                                 max_steps=2, batch_size=2, gradient_checkpointing=flag,
                                                 parametrization_args={"layers": [0, 1], "rank": 2}),
              tmp_path / str(flag), pad_token_id=0, progress=False)
        trained.append({k: v.detach().clone() for k, v in model.grun.state_dict().items()})
    for k in trained[0]:
        torch.testing.assert_close(trained[0][k], trained[1][k], rtol=1e-5, atol=1e-6)
