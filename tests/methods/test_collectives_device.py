"""Collectives run on the buffers' device: NCCL accepts only device tensors, so no rectifier or
analyzer may move a partial sum to the host (or build one there) before an all-reduce.

On CPU every tensor lives on the host, so the test makes host traffic visible instead: under a
sharded GradSpace (a spy process group), `Tensor.cpu()` and device-less `torch.tensor` /
`torch.zeros` calls raise, and every tensor handed to `all_reduce` must sit on the buffers' device.
"""
from __future__ import annotations

import pytest
import torch

import methods.gradspace as gradspace_module
from methods.analysis.geffect import FORGET_RISK, RETAIN_RISK
from methods.gradspace import GradSpace
from methods.rectifiers.base import TaskGradients
from methods.registry import ANALYZERS, RECTIFIERS

LAYOUT = {"model.embed_tokens.weight": slice(0, 6), "model.layers.0.mlp.down_proj.weight": slice(6, 14),
          "model.layers.1.mlp.down_proj.weight": slice(14, 20)}
SEGMENTS = [(0, 6), (6, 8), (14, 6)]


@pytest.fixture
def spy_collectives(monkeypatch):
    device = torch.device("cpu")
    seen = []

    def all_reduce(tensor, op=None, group=None):
        assert group == "shard-group"
        assert tensor.device == device, f"collective on {tensor.device}, buffers on {device}"
        seen.append(tuple(tensor.shape))

    def no_host_copy(self, *args, **kwargs):
        raise AssertionError("a collective path moved a tensor to the host with .cpu()")

    def deviceless(factory):
        def make(*args, **kwargs):
            if "device" not in kwargs:
                raise AssertionError(f"torch.{factory.__name__} without device= in a collective path")
            return factory(*args, **kwargs)
        return make

    monkeypatch.setattr(gradspace_module.dist, "all_reduce", all_reduce)
    monkeypatch.setattr(torch.Tensor, "cpu", no_host_copy)
    for name in ("tensor", "zeros", "full"):
        monkeypatch.setattr(torch, name, deviceless(getattr(torch, name)))
    return seen


def _tasks():
    generator = torch.Generator().manual_seed(0)
    make = lambda: torch.randn(20, generator=generator, device="cpu")  # noqa: E731
    return {"forget": make(), "retain": make(), "retain_nll": make(), FORGET_RISK: make(), RETAIN_RISK: make()}


@pytest.mark.parametrize("name", [n for n in RECTIFIERS.names() if n != "none"])
def test_rectifier_collectives_stay_on_the_buffers_device(name, spy_collectives):
    rectifier = RECTIFIERS.get(name)()
    buffers = _tasks()
    tasks = TaskGradients(buffers, {"forget": -1.0, "retain": 1.0}, retain="retain", retain_weight=1.0,
                          constraint="retain_nll")
    rectifier.combine(tasks, GradSpace(SEGMENTS, shard_group="shard-group"))
    assert spy_collectives, f"{name} ran no global reduction under sharding"


@pytest.mark.parametrize("name", ["geffect", "geometry"])
def test_analyzer_collectives_stay_on_the_buffers_device(name, spy_collectives, tmp_path):
    analyzer = ANALYZERS.get(name)()
    analyzer.start({"forget": -1.0, "retain": 1.0}, tmp_path)
    analyzer.observe(1, _tasks(), LAYOUT, GradSpace(SEGMENTS, shard_group="shard-group"))
    assert spy_collectives


def test_gru_counts_its_ema_without_copying_it(spy_collectives):
    rectifier = RECTIFIERS.get("gru")()
    tasks = TaskGradients(_tasks(), {"forget": -1.0, "retain": 1.0}, retain="retain", constraint="retain_nll")
    rectifier.combine(tasks, GradSpace(SEGMENTS, shard_group="shard-group"))
    assert rectifier.state_nbytes() == 20 * 4  # .cpu() raises here: counting never copies
