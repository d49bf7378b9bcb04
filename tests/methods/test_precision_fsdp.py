"""FSDP2 with bf16 compute casts through FSDP's own policy (precision.fsdp_policy: bf16 all-gathers,
fp32 reduce-scatters into the fp32 sharded masters) instead of autocasting the unsharded weights:
2 sharded CPU ranks train the same update as 1 unsharded autocast rank, to bf16 accuracy."""
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


def _worker(rank, world, port, out_dir):
    _set_env(rank, world, port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    model = tiny_llama()
    result = train(model, make_streams(n_forget=8), TrainConfig(**CONFIG), f"{out_dir}/rank{rank}", pad_token_id=0,
                   progress=False, shard=shard_bf16)
    full = {k: v.full_tensor().detach().clone() for k, v in model.state_dict().items()}
    if rank == 0:
        torch.save({"status": result.status, "dtypes": sorted({str(v.dtype) for v in full.values()}), "state": full},
                   f"{out_dir}/fsdp.pt")
    dist.destroy_process_group()


def test_fsdp2_bf16_policy_trains_the_autocast_update(tmp_path):
    mp.spawn(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    sharded = torch.load(tmp_path / "fsdp.pt")
    assert sharded["status"] == "ok" and sharded["dtypes"] == ["torch.float32"]  # fp32 masters stay
    start = tiny_llama().state_dict()
    model = tiny_llama()
    train(model, make_streams(n_forget=8), TrainConfig(**{**CONFIG, "grad_accum": 4}), tmp_path / "single",
          pad_token_id=0, progress=False)
    single = model.state_dict()
    moved_sharded = torch.cat([(sharded["state"][k] - start[k]).flatten() for k in start])
    moved_single = torch.cat([(single[k] - start[k]).flatten() for k in start])
    assert moved_single.norm() > 0
    assert torch.nn.functional.cosine_similarity(moved_sharded, moved_single, dim=0) > 0.95
    assert (moved_sharded.norm() / moved_single.norm() - 1).abs() < 0.05
