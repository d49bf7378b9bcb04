"""Training precision: fp32 master weights, compute in the model's configured dtype under autocast.

One policy on every launcher (single process, DDP, FSDP2): the trainable parameters, their
gradients, the task buffers and AdamW's moments are fp32; forwards (of the trained model and of the
frozen reference) run under `torch.autocast` in the compute dtype, so matmuls run in bf16 while
softmaxes and losses stay fp32. Frozen weights (the base of LoRA/GRUN, the `full` reference copy)
stay in the dtype they were loaded in. Why not bf16 weights with bf16 AdamW states, as a bare DDP
launch would keep them: an lr·update of ~1e-5 is below bf16's resolution near 1 (2⁻⁸), so most
updates would round away. FSDP2 gets the same arithmetic: its mixed-precision policy is left at
fp32 (Accelerate's bf16 `param_dtype` cast is replaced by the autocast), so FSDP all-gathers and
reduce-scatters fp32; the launcher's `--mixed_precision` flag is therefore not what sets precision.
"""
from __future__ import annotations

import contextlib
import math

import torch

COMPUTE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
MASTER_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
MASTER_DTYPE = torch.float32  # the default regime


def check_compute_dtype(name: str) -> None:
    if name == "float16":
        raise ValueError("compute_dtype float16 is not supported for training: fp16 autocast needs loss "
                         "scaling, which the loop does not do; set the model's dtype to bfloat16 (or float32)")
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {sorted(COMPUTE_DTYPES)}, got {name!r}")


def check_master_dtype(name: str, compute_dtype: str) -> None:
    if name not in MASTER_DTYPES:
        raise ValueError(f"master_dtype must be one of {sorted(MASTER_DTYPES)}, got {name!r}")
    if name == "bfloat16" and compute_dtype != "bfloat16":
        raise ValueError(f"master_dtype bfloat16 needs compute_dtype bfloat16 (got {compute_dtype!r}): bf16 "
                         "weights compute in bf16; set the model's dtype to bfloat16 or master_dtype float32")


def upcast_trainable(params, master_dtype: str = "float32") -> list[str]:
    """Make every trainable parameter a master weight of `master_dtype`, in place; returns the names changed."""
    dtype = MASTER_DTYPES[master_dtype]
    changed = []
    for name, param in params:
        if param.dtype != dtype:
            param.data = param.data.to(dtype)
            changed.append(name)
    return changed


def fsdp_policy(compute_dtype: str):
    """FSDP2's mixed-precision policy: all-gather in the compute dtype, reduce-scatter in fp32 (see
    the module docstring); fp32 everywhere for fp32 compute."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    dtype = COMPUTE_DTYPES[compute_dtype]
    if dtype == torch.float32:
        return MixedPrecisionPolicy()
    return MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)


def optimizer(param_groups, master_dtype: str, **adamw):
    """AdamW over the master weights: torch's fused AdamW for fp32 masters (foreach would allocate
    ~2 parameter-sized temporaries), fp32 moments over bf16 weights otherwise."""
    if master_dtype == "float32":
        return torch.optim.AdamW(param_groups, fused=True, **adamw)
    return AdamWFp32States(param_groups, **adamw)


class AdamWFp32States(torch.optim.Optimizer):
    """AdamW (decoupled weight decay, torch's update rule) over low-precision parameters with fp32
    moments: per parameter the update is computed in fp32 and the result rounded to the parameter's
    dtype, as bitsandbytes' 32-bit AdamW (`paged_adamw_32bit`, used by GRU and SAGO) does. One
    parameter's fp32 copy exists at a time. Sharded (DTensor) parameters update their local shards."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def load_state_dict(self, state_dict) -> None:
        """torch's loader casts floating state to the parameter's dtype: put the fp32 moments back."""
        super().load_state_dict(state_dict)
        params = [p for group in self.param_groups for p in group["params"]]
        for index, saved in state_dict["state"].items():
            state = self.state[params[index]]
            for key in ("exp_avg", "exp_avg_sq"):
                state[key] = saved[key].to(device=state[key].device, dtype=torch.float32, copy=True)

    @torch.no_grad()
    def step(self, closure=None):
        from methods.buffers import local

        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, decay = group["lr"], group["eps"], group["weight_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                weight, grad = local(param), local(param.grad).float()
                state = self.state[param]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
                    state["exp_avg_sq"] = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
                state["step"] += 1
                step = state["step"].item()
                master = weight.float()
                master.mul_(1 - lr * decay)
                state["exp_avg"].lerp_(grad, 1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (state["exp_avg_sq"].sqrt() / math.sqrt(1 - beta2 ** step)).add_(eps)
                master.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - beta1 ** step))
                weight.copy_(master)
        return loss


def autocast(device: torch.device, compute_dtype: str):
    """The forward context: autocast to the compute dtype, or nothing for float32."""
    dtype = COMPUTE_DTYPES[compute_dtype]
    if dtype == MASTER_DTYPE:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _dtype_names(tensors) -> list[str]:
    return sorted({str(t.dtype).removeprefix("torch.") for t in tensors})


def describe(compute_dtype: str, model, trainable, reference=None, master_dtype: str = "float32",
             sharded: bool = False) -> dict:
    """The precision block of the train result (cost/provenance): what each part was held in."""
    trainable_ids = {id(p) for _, p in trainable}
    frozen = [p for p in model.parameters() if id(p) not in trainable_ids]
    block = {
        "master_weights": _dtype_names(p for _, p in trainable),
        "compute": compute_dtype,
        "autocast": COMPUTE_DTYPES[compute_dtype] != torch.float32,
        "frozen_weights": _dtype_names(frozen),
        "reference": None if reference is None else _dtype_names(reference.parameters()),
        "gradient_buffers": "float32",
        "optimizer_states": "float32",
    }
    if master_dtype != "float32":
        block["optimizer"] = "adamw, fp32 moments, update rounded to the master dtype"
    if sharded:
        block["fsdp_param_dtype"] = compute_dtype  # FSDP2's all-gather dtype (fsdp_policy)
    return block
