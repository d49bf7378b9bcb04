"""FSDP2 sharding of the frozen reference copy (`full` parametrization), so a 7B reference costs
2 bytes/param / world per GPU instead of a whole bf16 replica on every rank.

Under Accelerate's FSDP2 launch the trained model is sharded by `accelerator.prepare`; the frozen
reference is not prepared by Accelerate, so it is sharded here with `fully_shard` on the same 1-D
mesh, one unit per transformer block (the classes the model lists in `_no_split_modules`, which is
what Accelerate's TRANSFORMER_BASED_WRAP uses) and the root last. A no-grad forward then all-gathers
one block at a time and frees it after (reshard_after_forward).
"""
from __future__ import annotations

import torch.nn as nn


def block_classes(model: nn.Module) -> set[str]:
    names = set(getattr(model, "_no_split_modules", None) or ())
    if not names:
        raise ValueError(f"{type(model).__name__} lists no `_no_split_modules`, so its transformer blocks are "
                         "unknown: pass train(..., shard=fn) to shard the model and its reference yourself")
    return names


def shard_frozen(module: nn.Module, mesh) -> nn.Module:
    from torch.distributed.fsdp import fully_shard

    classes = block_classes(module)
    for sub in list(module.modules()):
        if sub is not module and type(sub).__name__ in classes:
            fully_shard(sub, mesh=mesh)
    fully_shard(module, mesh=mesh)
    return module
