"""The training loop: fused vs per-task gradients, a hand-written GradDiff step, resume, divergence,
bad input."""
import json

import pytest
import torch

from methods.buffers import TaskBuffers
from methods.data import Schedule, collate, gather
from methods.registry import OBJECTIVES
from methods.train import TrainConfig, train
from tests.methods.conftest import make_streams, tiny_llama


def params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_params(a, b, **tol):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], **tol, msg=lambda m: f"{k}: {m}")


def test_fused_backward_equals_sum_of_task_buffers(streams):
    model = tiny_llama()
    objective = OBJECTIVES.get("graddiff")(forget_weight=0.7, retain_weight=1.3)
    named = list(model.named_parameters())
    buffers = TaskBuffers(named, ["update", "forget", "retain"], "cpu")
    batches = {"forget": collate(streams["forget"][:4], 0), "retain": collate(streams["retain"][:4], 0)}
    losses = objective.losses(model, batches, None)
    buffers.backward("update", 0.7 * losses["forget"] + 1.3 * losses["retain"])
    losses = objective.losses(model, batches, None)
    buffers.backward("forget", losses["forget"], retain_graph=True)
    buffers.backward("retain", losses["retain"])
    flat = buffers.buffers
    torch.testing.assert_close(flat["update"], 0.7 * flat["forget"] + 1.3 * flat["retain"], rtol=1e-5, atol=1e-6)
    assert flat["forget"].abs().sum() > 0


@pytest.mark.parametrize("rectifier", ["none", "none+analyzer"])
def test_one_step_equals_hand_written_graddiff(tmp_path, streams, rectifier):
    """train() with graddiff equals HF losses + torch AdamW written out by hand (fused or per-task path)."""
    config = TrainConfig(objective="graddiff", rectifier="none", lr=1e-2, max_steps=1, batch_size=12,
                         grad_accum=1, max_grad_norm=None, weight_decay=0.0, scheduler="constant", seed=3)
    analyzers = ["geometry"] if rectifier.endswith("analyzer") else []
    trained = tiny_llama()
    result = train(trained, streams, config, tmp_path, pad_token_id=0, analyzers=analyzers, progress=False)
    assert result.status == "ok" and result.optimizer_steps == 1
    assert result.backward_passes == 2  # one backward per task on both paths

    manual = tiny_llama()
    micro, = Schedule({"forget": 12, "retain": 16}, "forget", (), 12, 1, 1, 3).micro_batches(0)
    batches = gather(streams, micro, 0, "cpu")
    loss = -manual(**batches["forget"]).loss + manual(**batches["retain"]).loss
    loss.backward()
    optimizer = torch.optim.AdamW(manual.parameters(), lr=1e-2, weight_decay=0.0)
    optimizer.step()
    assert_same_params(params(trained), params(manual), rtol=1e-5, atol=1e-6)
    row = json.loads((tmp_path / "train_log.jsonl").read_text().splitlines()[0])
    assert row["losses"]["forget"] == pytest.approx(float(-tiny_llama()(**batches["forget"]).loss), rel=1e-5)
    if analyzers:
        assert row["cos_forget_retain"] is not None and "group_cos_forget_retain" in row
    else:
        assert row["cos_forget_retain"] is None


@pytest.mark.parametrize("objective,rectifier,args", [
    ("graddiff", "gru", {"gamma": 0.6}),
    ("npo", "pcgrad", {"granularity": "tensor"}),
])
def test_resume_continues_exactly(tmp_path, streams, objective, rectifier, args):
    config = TrainConfig(objective=objective, rectifier=rectifier, rectifier_args=args, lr=5e-3, max_steps=5,
                         batch_size=3, grad_accum=2, warmup_steps=2, scheduler="linear", checkpoint_every=3,
                         weight_decay=0.01, seed=7)
    straight = tiny_llama()
    train(straight, streams, config, tmp_path / "a", pad_token_id=0, progress=False)
    checkpoint = tmp_path / "a" / "checkpoints" / "step-0000003"
    assert (checkpoint / "state.pt").is_file()
    if rectifier == "gru":
        assert torch.load(checkpoint / "state.pt", weights_only=False)["rectifier"]["ema"] is not None
    # the caller passes the starting model (NPO's frozen reference is copied from it); without a
    # reference, different weights prove that the trainable state comes from the checkpoint
    resumed = tiny_llama(seed=0 if objective == "npo" else 123)
    result = train(resumed, streams, config, tmp_path / "b", pad_token_id=0, resume_from=checkpoint, progress=False)
    assert result.optimizer_steps == 5
    assert_same_params(params(straight), params(resumed), rtol=0, atol=0)
    log_a = [json.loads(l) for l in (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()]
    log_b = [json.loads(l) for l in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert [r["losses"] for r in log_a] == [r["losses"] for r in log_b]


def test_resume_refuses_a_different_config(tmp_path, streams):
    config = TrainConfig(objective="ga", max_steps=3, batch_size=4, checkpoint_every=1, lr=1e-3)
    train(tiny_llama(), streams, config, tmp_path, pad_token_id=0, progress=False)
    other = TrainConfig(objective="ga", max_steps=3, batch_size=4, checkpoint_every=1, lr=2e-3)
    with pytest.raises(ValueError, match="different config.*lr"):
        train(tiny_llama(), streams, other, tmp_path / "b", pad_token_id=0,
              resume_from=tmp_path / "checkpoints" / "step-0000001", progress=False)


@pytest.mark.parametrize("rectifier", ["none", "sago"])
def test_non_finite_loss_ends_run_as_diverged(tmp_path, streams, rectifier):
    model = tiny_llama()
    with torch.no_grad():
        model.lm_head.weight[5, 0] = float("nan")
    config = TrainConfig(objective="graddiff", rectifier=rectifier, max_steps=4, batch_size=4, checkpoint_every=1)
    result = train(model, streams, config, tmp_path, pad_token_id=0, progress=False)
    assert result.status == "diverged" and result.diverged_step == 1 and "non-finite" in result.reason
    status = json.loads((tmp_path / "train_status.json").read_text())
    assert status["status"] == "diverged" and status["diverged_step"] == 1
    assert not (tmp_path / "checkpoints").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left


def test_non_finite_gradient_ends_run_as_diverged(tmp_path, streams):
    model = tiny_llama()
    model.model.norm.weight.register_hook(lambda g: g * float("inf"))
    config = TrainConfig(objective="finetune", max_steps=3, batch_size=4)
    result = train(model, {"train": streams["train"]}, config, tmp_path, pad_token_id=0, progress=False)
    assert result.status == "diverged" and result.diverged_step == 1 and "gradient" in result.reason


def test_unknown_names_list_available_ones(tmp_path, streams):
    with pytest.raises(KeyError, match="unknown objective 'gd'.*graddiff"):
        train(tiny_llama(), streams, TrainConfig(objective="gd"), tmp_path, 0)
    with pytest.raises(KeyError, match="unknown rectifier 'pcgard'.*pcgrad"):
        train(tiny_llama(), streams, TrainConfig(objective="ga", rectifier="pcgard"), tmp_path, 0)


def test_impossible_combinations_fail_before_training(tmp_path, streams):
    only_forget = {"forget": streams["forget"]}
    with pytest.raises(ValueError, match="stream 'retain'.*rectifier 'gru' needs a retain gradient"):
        train(tiny_llama(), only_forget, TrainConfig(objective="ga", rectifier="gru"), tmp_path, 0)
    with pytest.raises(ValueError, match="stream 'retain'.*objective 'npo' reads"):
        train(tiny_llama(), only_forget, TrainConfig(objective="npo"), tmp_path, 0)
    with pytest.raises(ValueError, match="stream 'forget_idk'.*build_streams"):
        train(tiny_llama(), streams | {"forget_idk": []}, TrainConfig(objective="idknll"), tmp_path, 0)
    with pytest.raises(ValueError, match="scheduler must be one of"):
        train(tiny_llama(), streams, TrainConfig(objective="ga", scheduler="step"), tmp_path, 0)
    assert list(tmp_path.iterdir()) == []


def test_ga_with_gru_adds_retain_nll_task(tmp_path, streams):
    config = TrainConfig(objective="ga", rectifier="gru", max_steps=2, batch_size=4, lr=1e-3)
    result = train(tiny_llama(), streams, config, tmp_path, pad_token_id=0, progress=False)
    assert result.status == "ok" and result.backward_passes == 4
    row = json.loads((tmp_path / "train_log.jsonl").read_text().splitlines()[-1])
    assert set(row["losses"]) == {"forget", "retain_nll"} and row["cos_update_retain"] is not None
    # GRU's guarantee is against the EMA it projects on (after this step's update), logged per step
    rows = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert all(r["cos_update_constraint"] is not None and r["cos_update_constraint"] >= -1e-6 for r in rows)


def test_partial_last_window_and_epochs(tmp_path):
    streams = make_streams(n_forget=7)
    config = TrainConfig(objective="graddiff", rectifier="pcgrad", epochs=2, batch_size=2, grad_accum=2)
    result = train(tiny_llama(), streams, config, tmp_path, pad_token_id=0, progress=False)
    assert result.optimizer_steps == 4  # ceil(7 / 4) per epoch
    assert result.backward_passes == 2 * 2 * (2 + 2)  # two tasks × (2 + 2) micro-batches per epoch


def test_unversioned_fsdp_and_deepspeed_launches_are_refused_with_a_way_out():
    from accelerate.utils import DistributedType

    from methods.train import check_distributed_type

    for supported in (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU):
        check_distributed_type(supported)
    for sharded in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        with pytest.raises(NotImplementedError, match="ddp.yaml"):
            check_distributed_type(sharded)
