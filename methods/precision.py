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

import torch

COMPUTE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
MASTER_DTYPE = torch.float32


def check_compute_dtype(name: str) -> None:
    if name == "float16":
        raise ValueError("compute_dtype float16 is not supported for training: fp16 autocast needs loss "
                         "scaling, which the loop does not do; set the model's dtype to bfloat16 (or float32)")
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {sorted(COMPUTE_DTYPES)}, got {name!r}")


def upcast_trainable(params) -> list[str]:
    """Make every trainable parameter an fp32 master weight, in place; returns the names changed."""
    changed = []
    for name, param in params:
        if param.dtype != MASTER_DTYPE:
            param.data = param.data.to(MASTER_DTYPE)
            changed.append(name)
    return changed


def autocast(device: torch.device, compute_dtype: str):
    """The forward context: autocast to the compute dtype, or nothing for float32."""
    dtype = COMPUTE_DTYPES[compute_dtype]
    if dtype == MASTER_DTYPE:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _dtype_names(tensors) -> list[str]:
    return sorted({str(t.dtype).removeprefix("torch.") for t in tensors})


def describe(compute_dtype: str, model, trainable, reference=None) -> dict:
    """The precision block of the train result (cost/provenance): what each part was held in."""
    trainable_ids = {id(p) for _, p in trainable}
    frozen = [p for p in model.parameters() if id(p) not in trainable_ids]
    return {
        "master_weights": _dtype_names(p for _, p in trainable),
        "compute": compute_dtype,
        "autocast": COMPUTE_DTYPES[compute_dtype] != MASTER_DTYPE,
        "frozen_weights": _dtype_names(frozen),
        "reference": None if reference is None else _dtype_names(reference.parameters()),
        "gradient_buffers": "float32",
        "optimizer_states": "float32",
    }
