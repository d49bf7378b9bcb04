"""Trajectory snapshots: the trainable state at optimizer steps K, 2K, ... (`evaluate_every: K`).

A snapshot holds only what trains (full: every weight; subset: the chosen tensors; GRUN: the edits and
the prompt suffix learned so far), as `trainable.safetensors` in `snapshots/step-NNNNNNN/`. The model
at step k is the run's final saved model with these tensors copied over it: every other weight is
frozen, so it equals the start model's, which the final model also holds. Evaluation (`ubench
evaluate-run`) loads the final model once and swaps the snapshots in, one after the other.

LoRA is the exception and is refused: its final model is merged (W0 + s·B·A), so the frozen base W0
is no longer in it and cannot be recovered exactly from the merged weights.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from common import atomic

STATE_FILE = "trainable.safetensors"
FOLDER = re.compile(r"^step-(\d{7})$")
SNAPSHOT_PARAMETRIZATIONS = ("full", "subset", "grun")


def snapshot_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"step-{step:07d}"


def snapshot_steps(every: int, total_steps: int) -> list[int]:
    """K, 2K, ... strictly before the final step (the final model is saved and evaluated anyway)."""
    return list(range(every, total_steps, every))


def check_supported(parametrization: str, parametrization_args: dict | None = None) -> None:
    if parametrization not in SNAPSHOT_PARAMETRIZATIONS:
        raise ValueError(
            f"evaluate_every is not supported with parametrization {parametrization!r}: its final model is "
            "saved merged (W0 + s*B*A), so the model at an earlier step cannot be rebuilt from it exactly; "
            f"use one of {', '.join(SNAPSHOT_PARAMETRIZATIONS)} or drop evaluate_every for this run")


def gathered_state(named: list[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The full (unsharded) trainable tensors on CPU. FSDP2 DTensor shards are all-gathered: a
    collective, so every rank must call this, in the same order (rank 0 then writes)."""
    from torch.distributed.tensor import DTensor

    state = {}
    for name, param in named:
        tensor = param.full_tensor() if isinstance(param, DTensor) else param
        state[name] = tensor.detach().to("cpu", copy=True).contiguous()
    return state


def extras_of(model: torch.nn.Module) -> dict:
    """Non-tensor state a snapshot needs besides the parameters (GRUN: the learned prompt suffix)."""
    edits = getattr(model, "grun", None)
    if edits is not None:
        return {"grun_prompt_suffix": list(edits.prompt_suffix or [])}
    return {}


def save(root: str | Path, step: int, state: dict[str, torch.Tensor], extras: dict) -> Path:
    from safetensors.torch import save_file

    path = snapshot_dir(root, step)
    with atomic.atomic_dir(path) as tmp:
        save_file(state, str(tmp / STATE_FILE), metadata={"step": str(step), "extras": json.dumps(extras)})
    return path


@dataclass(frozen=True)
class Snapshot:
    step: int
    path: Path

    def load(self) -> tuple[dict[str, torch.Tensor], dict]:
        from safetensors import safe_open
        from safetensors.torch import load_file

        file = self.path / STATE_FILE
        with safe_open(str(file), framework="pt") as handle:
            metadata = handle.metadata() or {}
        return load_file(str(file)), json.loads(metadata.get("extras", "{}"))


def list_snapshots(root: str | Path) -> list[Snapshot]:
    """The snapshots below `root`, ascending by step; a folder without its state file is an error."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"snapshot folder {root} does not exist: it is written by `ubench unlearn` "
                                "for runs with evaluate_every (re-run the unlearn job)")
    found = []
    for child in sorted(root.iterdir()):
        match = FOLDER.match(child.name)
        if not match:
            continue
        if not (child / STATE_FILE).is_file():
            raise FileNotFoundError(f"{child} has no {STATE_FILE}: an incomplete snapshot; re-run the unlearn job")
        found.append(Snapshot(int(match.group(1)), child))
    return found


def apply(model: torch.nn.Module, state: dict[str, torch.Tensor], extras: dict) -> None:
    """Copy a snapshot's tensors into the loaded final model, in place (cast to its dtype/device)."""
    params = dict(model.named_parameters())
    unknown = sorted(set(state) - set(params))
    if unknown:
        raise ValueError(f"snapshot tensors {unknown[:5]} are not parameters of the evaluated model "
                         f"({type(model).__name__}); was it saved by another run or parametrization?")
    with torch.no_grad():
        for name, tensor in state.items():
            if params[name].shape != tensor.shape:
                raise ValueError(f"snapshot tensor {name} has shape {tuple(tensor.shape)}, the model's "
                                 f"parameter {tuple(params[name].shape)}")
            params[name].copy_(tensor)
    if "grun_prompt_suffix" in extras:
        model.grun.prompt_suffix = list(extras["grun_prompt_suffix"]) or None
