"""FSDP2 with bf16 compute casts through FSDP's own policy (precision.fsdp_policy: bf16 all-gathers,
fp32 reduce-scatters into the sharded masters) instead of autocasting the unsharded weights: 2
sharded CPU ranks train the same update as 1 unsharded autocast rank, to bf16 accuracy, with fp32
masters and with bf16 ones (`master_dtype: bfloat16`, whose optimizer updates the local shards)."""
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from methods import precision
from methods.train import TrainConfig, train
from tests.methods.conftest import make_streams, tiny_llama
from tests.methods.test_distributed import _set_env, free_port

CONFIG = dict(objective="graddiff", rectifier="pcgrad", lr=1e-3, max_steps=2, batch_size=2, grad_accum=2, seed=5,
              max_grad_norm=None, scheduler="constant", compute_dtype="bfloat16")


def shard_bf16(model):
    from torch.distributed.fsdp import fully_shard

    policy = precision.fsdp_policy("bfloat16")
    for layer in model.model.layers:
        fully_shard(layer, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    return model


MASTERS = ("float32", "bfloat16")


def _start(master_dtype):
    model = tiny_llama()
    return model.to(torch.bfloat16) if master_dtype == "bfloat16" else model


def _worker(rank, world, port, out_dir):
    _set_env(rank, world, port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    results = {}
    for master in MASTERS:
        model = _start(master)
        result = train(model, make_streams(n_forget=8), TrainConfig(**CONFIG, master_dtype=master),
                       f"{out_dir}/{master}-rank{rank}", pad_token_id=0, progress=False, shard=shard_bf16)
        full = {k: v.full_tensor().detach().float().clone() for k, v in model.state_dict().items()}
        results[master] = {"status": result.status, "dtypes": sorted({str(v.dtype) for v in model.parameters()}),
                           "state": full}
    if rank == 0:
        torch.save(results, f"{out_dir}/fsdp.pt")
    dist.destroy_process_group()


def test_fsdp2_bf16_policy_trains_the_autocast_update(tmp_path):
    mp.spawn(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    results = torch.load(tmp_path / "fsdp.pt")
    for master in MASTERS:
        sharded = results[master]
        assert sharded["status"] == "ok" and sharded["dtypes"] == [f"torch.{master}"]  # masters keep their dtype
        start = {k: v.float() for k, v in _start(master).state_dict().items()}
        model = _start(master)
        train(model, make_streams(n_forget=8), TrainConfig(**{**CONFIG, "grad_accum": 4}, master_dtype=master),
              tmp_path / f"single-{master}", pad_token_id=0, progress=False)
        single = {k: v.float() for k, v in model.state_dict().items()}
        moved_sharded = torch.cat([(sharded["state"][k] - start[k]).flatten() for k in start])
        moved_single = torch.cat([(single[k] - start[k]).flatten() for k in start])
        assert moved_single.norm() > 0
        assert torch.nn.functional.cosine_similarity(moved_sharded, moved_single, dim=0) > 0.95, master
        assert (moved_sharded.norm() / moved_single.norm() - 1).abs() < 0.05, master
