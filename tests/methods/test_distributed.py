"""Data parallel and sharded correctness on CPU (gloo): the rectifier sees globally reduced
gradients, so 2 ranks × GA 2 equals 1 rank × GA 4 on the same global batch."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from methods.gradspace import GradSpace
from methods.train import TrainConfig, train
from tests.methods.conftest import make_streams, tiny_llama

CASES = [
    ("graddiff", "none", {}),
    ("graddiff", "gru", {}),
    ("npo", "pcgrad", {"granularity": "global"}),
    ("graddiff", "pcgrad", {"granularity": "tensor"}),
    ("graddiff", "sago", {}),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(objective, rectifier, args, grad_accum):
    # 10 forget items, window 8: the second step of each epoch is a partial window
    return TrainConfig(objective=objective, rectifier=rectifier, rectifier_args=args, lr=5e-3, epochs=2,
                       batch_size=2, grad_accum=grad_accum, seed=5, max_grad_norm=1.0, warmup_steps=1)


def _set_env(rank, world, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)


def _data_parallel_worker(rank, world, port, out_dir):
    _set_env(rank, world, port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    results = {}
    for objective, rectifier, args in CASES:
        model = tiny_llama()
        result = train(model, make_streams(n_forget=10), config(objective, rectifier, args, grad_accum=2),
                       f"{out_dir}/{rectifier}{rank}", pad_token_id=0, progress=False)
        results[(objective, rectifier, str(args))] = (result.optimizer_steps, result.backward_passes,
                                                      {k: v.clone() for k, v in model.state_dict().items()})
    if rank == 0:
        torch.save(results, f"{out_dir}/dp.pt")
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_equal_one_rank_for_every_rectifier(tmp_path):
    mp.spawn(_data_parallel_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    distributed = torch.load(tmp_path / "dp.pt")
    for objective, rectifier, args in CASES:
        model = tiny_llama()
        single = train(model, make_streams(n_forget=10), config(objective, rectifier, args, grad_accum=4),
                       tmp_path / f"single-{rectifier}", pad_token_id=0, progress=False)
        steps, passes, state = distributed[(objective, rectifier, str(args))]
        assert steps == single.optimizer_steps == 4
        assert passes == single.backward_passes
        for name, value in model.state_dict().items():
            torch.testing.assert_close(state[name], value, rtol=1e-4, atol=1e-5,
                                       msg=lambda m: f"{objective}+{rectifier} {name}: {m}")


def _sharded_worker(rank, world, port, out_dir):
    from torch.distributed.fsdp import fully_shard
    _set_env(rank, world, port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from tests.methods.conftest import make_streams as streams_of
    from methods.data import collate
    model = tiny_llama()
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    batch = collate(streams_of()["forget"][:4], 0)
    grads = {}
    for task, sign in (("forget", -1.0), ("retain", 1.0)):
        model.zero_grad()
        (sign * model(**batch).loss * (1.0 if task == "forget" else 0.5) + (model(**batch).logits ** 2).mean() * (task == "retain")).backward()
        grads[task] = torch.cat([p.grad.to_local().reshape(-1) for p in model.parameters()])
    segments, offset = [], 0
    for p in model.parameters():
        segments.append((offset, p.grad.to_local().numel()))
        offset += segments[-1][1]
    space = GradSpace(segments, shard_group=dist.group.WORLD)
    f, r = grads["forget"], grads["retain"]
    out = {"dot": space.dot(f, r), "norm": space.norm(f), "segment_dots": space.segment_dots(f, r),
           "size": space.size(f)}
    block = torch.stack([f, r])  # the block path (rows of one tensor) and the separate-rows path, chunked
    chunked = GradSpace(segments, shard_group=dist.group.WORLD, chunk=100)
    out["gram"] = chunked.gram([block[0], block[1]])
    out["segment_gram"] = chunked.gram([f, r], per_segment=True)
    full = {name: torch.cat([p.grad.full_tensor().reshape(-1)]) for name, p in model.named_parameters()}
    if rank == 0:
        torch.save({"sharded": out, "names": list(full)}, f"{out_dir}/sharded.pt")
    dist.destroy_process_group()


def test_sharded_reductions_equal_unsharded(tmp_path):
    mp.spawn(_sharded_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    saved = torch.load(tmp_path / "sharded.pt")
    # the same gradients without sharding, one process
    from methods.data import collate
    model = tiny_llama()
    batch = collate(make_streams()["forget"][:4], 0)
    grads = {}
    for task, sign in (("forget", -1.0), ("retain", 1.0)):
        model.zero_grad()
        (sign * model(**batch).loss * (1.0 if task == "forget" else 0.5) + (model(**batch).logits ** 2).mean() * (task == "retain")).backward()
        grads[task] = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    segments, offset = [], 0
    for p in model.parameters():
        segments.append((offset, p.numel()))
        offset += p.numel()
    space = GradSpace(segments)
    f, r = grads["forget"], grads["retain"]
    sharded = saved["sharded"]
    assert sharded["size"] == f.numel()
    assert sharded["dot"] == pytest.approx(space.dot(f, r), rel=1e-5)
    assert sharded["norm"] == pytest.approx(space.norm(f), rel=1e-5)
    torch.testing.assert_close(sharded["segment_dots"], space.segment_dots(f, r), rtol=1e-5, atol=1e-9)
    # the Gram matrices: one all-reduce of the k×k (per tensor: S×k×k) partial sums
    exact = torch.stack([f, r]).double()
    torch.testing.assert_close(sharded["gram"], exact @ exact.T, rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(sharded["segment_gram"][:, 0, 1], space.segment_dots(f, r), rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(sharded["segment_gram"].sum(0), exact @ exact.T, rtol=1e-5, atol=1e-9)
    # a local-shard dot product (SAGO's ZeRO-3 bug) would differ from the global one
    assert abs(sharded["dot"]) > 0
