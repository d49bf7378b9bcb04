"""Checkpoints: everything needed to continue a run exactly (trainable weights, optimizer,
scheduler, rectifier state, RNG states, data position = optimizer step, the log so far)."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from common import atomic

STATE_FILE = "state.pt"


def checkpoint_dir(out_dir: str | Path, step: int) -> Path:
    return Path(out_dir) / "checkpoints" / f"step-{step:07d}"


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, state: dict) -> Path:
    with atomic.atomic_dir(path) as tmp:
        torch.save(state, tmp / STATE_FILE)
    return path


def load(path: str | Path) -> dict:
    file = Path(path) / STATE_FILE
    if not file.is_file():
        raise FileNotFoundError(f"resume_from={path}: no {STATE_FILE} there; pass a folder "
                                "written by checkpoint_every (out_dir/checkpoints/step-NNNNNNN)")
    # our own file with optimizer state and RNG tuples, hence not weights_only
    return torch.load(file, map_location="cpu", weights_only=False)


def is_sharded(model: torch.nn.Module) -> bool:
    """True when FSDP2 has sharded the model's parameters into DTensors."""
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


def full_model_state(model: torch.nn.Module) -> dict:
    """The unsharded model state on CPU, for saving after FSDP2 training (`save_pretrained(...,
    state_dict=...)` on the main process). It all-gathers the shards: every rank must call it;
    rank 0 gets the tensors, other ranks an empty dict. Unsharded models: their own state_dict."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    if not is_sharded(model):
        return model.state_dict()
    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
