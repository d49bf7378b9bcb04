"""FSDP2 training on CPU (gloo): 2 ranks with fully_shard-ed parameters train the same global
batch to the same parameters as 1 unsharded process, for the fused path and every kind of
rectifier (element-wise GRU, dot-product PCGrad tensor/global and SAGO)."""
import dataclasses
import json

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from methods import checkpoint, snapshots
from methods.parametrizations.full import Full
from methods.train import TrainConfig, train
from tests.methods.conftest import make_streams, tiny_llama
from tests.methods.test_distributed import CASES, _set_env, free_port  # the same rectifier cases as DDP


def config(objective, rectifier, args, grad_accum):
    # 10 forget items, window 8: the second step of each epoch has one micro-batch, so rank 1 idles
    # through a zero-weight repeat to keep FSDP's collectives matched
    return TrainConfig(objective=objective, rectifier=rectifier, rectifier_args=args, lr=5e-3, epochs=2,
                       batch_size=2, grad_accum=grad_accum, seed=5, max_grad_norm=1.0, warmup_steps=1)


def shard(model):
    from torch.distributed.fsdp import fully_shard
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    return model


def refusals_on_a_sharded_model(out_dir) -> list[str]:
    """What train() says (before any collective) where sharding cannot work yet."""
    messages = []
    for objective, extra in (("npo", {}), ("graddiff", {"checkpoint_every": 1})):
        try:
            train(shard(tiny_llama()), make_streams(n_forget=10), dataclasses.replace(
                config(objective, "none", {}, grad_accum=2), **extra), out_dir, pad_token_id=0, progress=False)
        except (ValueError, NotImplementedError) as error:
            messages.append(f"{type(error).__name__}: {error}")
    return messages


def _fsdp_worker(rank, world, port, out_dir):
    _set_env(rank, world, port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    results = {"refusals": refusals_on_a_sharded_model(f"{out_dir}/refused{rank}")}
    for case, (objective, rectifier, args) in enumerate(CASES):
        model = tiny_llama()
        # NPO's frozen reference is copied before sharding (as under Accelerate): pass `shard`;
        # the others train a model sharded beforehand
        kwargs = {"shard": shard} if objective == "npo" else {}
        if not kwargs:
            shard(model)
        result = train(model, make_streams(n_forget=10), config(objective, rectifier, args, grad_accum=2),
                       f"{out_dir}/case{case}-rank{rank}", pad_token_id=0, progress=False,
                       snapshot_every=2 if case == 0 else None, **kwargs)  # snapshots gather the shards
        full = {k: v.full_tensor().detach().clone() for k, v in model.state_dict().items()}
        saved = checkpoint.full_model_state(model)  # every rank gathers; rank 0 keeps the tensors
        assert (saved.keys() == full.keys() and all(torch.equal(saved[k], full[k]) for k in full)
                if rank == 0 else saved == {})
        if case == 0 and rank == 0:  # what `ubench unlearn` does after sharded training
            Full().save(model, f"{out_dir}/saved", state_dict=saved)
        results[(objective, rectifier, str(args))] = (result.optimizer_steps, result.backward_passes, full)
    if rank == 0:
        torch.save(results, f"{out_dir}/fsdp.pt")
    dist.destroy_process_group()


def test_fsdp2_two_ranks_equal_one_unsharded_rank(tmp_path):
    mp.spawn(_fsdp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    sharded = torch.load(tmp_path / "fsdp.pt")
    reference_copy, checkpoints = sharded.pop("refusals")
    assert reference_copy.startswith("ValueError") and "shard=fn" in reference_copy
    assert checkpoints.startswith("NotImplementedError") and "checkpoint_every" in checkpoints
    for case, (objective, rectifier, args) in enumerate(CASES):
        model = tiny_llama()
        single = train(model, make_streams(n_forget=10), config(objective, rectifier, args, grad_accum=4),
                       tmp_path / f"case{case}-single", pad_token_id=0, progress=False,
                       snapshot_every=2 if case == 0 else None)
        steps, passes, state = sharded[(objective, rectifier, str(args))]
        assert steps == single.optimizer_steps == 4
        assert passes == single.backward_passes
        # the logged geometry checks that FSDP averages (not sums) and the dot products are global
        logs = [[json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
                for folder in (tmp_path / f"case{case}-rank0", tmp_path / f"case{case}-single")]
        for row, want in zip(*logs):
            for key in ("losses", "grad_norm", "update_norm", "cos_forget_retain", "cos_update_retain",
                        "cos_update_forget", "intervened"):
                expected = want[key] if want[key] is None else pytest.approx(want[key], rel=1e-4, abs=1e-6)
                assert row[key] == expected, (objective, rectifier, key, row["step"])
        if case == 0:  # the step-2 snapshot of the sharded run holds the full tensors of the unsharded one
            (got,), (want,) = (snapshots.list_snapshots(tmp_path / f"case0-{who}" / "snapshots")
                               for who in ("rank0", "single"))
            assert got.step == want.step == 2
            got_state, want_state = got.load()[0], want.load()[0]
            assert got_state.keys() == want_state.keys() and len(got_state) == len(list(model.parameters()))
            for name, value in want_state.items():
                torch.testing.assert_close(got_state[name], value, rtol=1e-4, atol=1e-5)
            assert not (tmp_path / "case0-rank1" / "snapshots").exists()  # rank 0 writes
        if case == 0:  # the gathered weights saved from the sharded model reload as a plain HF model
            from transformers import LlamaForCausalLM

            reloaded = LlamaForCausalLM.from_pretrained(tmp_path / "saved").state_dict()
            for name, value in state.items():
                torch.testing.assert_close(reloaded[name], value)
        start = tiny_llama().state_dict()
        for name, value in model.state_dict().items():
            assert not torch.equal(value, start[name]), f"{objective}+{rectifier} {name} did not train"
            torch.testing.assert_close(state[name], value, rtol=1e-4, atol=1e-5,
                                       msg=lambda m: f"{objective}+{rectifier} {name}: {m}")


def test_fsdp2_launches_are_allowed_and_other_sharding_refused():
    from accelerate.utils import DistributedType

    from methods.train import check_distributed_type

    check_distributed_type(DistributedType.FSDP, fsdp_version=2)
    for kind, version in ((DistributedType.FSDP, 1), (DistributedType.FSDP, None), (DistributedType.DEEPSPEED, None)):
        with pytest.raises(NotImplementedError, match="fsdp_version: 2"):
            check_distributed_type(kind, fsdp_version=version)
