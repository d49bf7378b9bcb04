"""Trajectory snapshots: the trainable state at optimizer steps K, 2K, ... (`evaluate_every: K`).

A snapshot holds only what trains (full: every weight; subset: the chosen tensors; GRUN: the edits and
the prompt suffix learned so far; LoRA: the adapters A, B), as `trainable.safetensors` in
`snapshots/step-NNNNNNN/`. The model at step k is the run's final saved model with these tensors
copied over it: every other weight is frozen, so it equals the start model's, which the final model
also holds. Evaluation (`ubench evaluate-run`) loads the final model once and swaps the snapshots in,
one after the other.

LoRA's final model is merged (W0 + s·B·A), so W0 is no longer in it: `LoraRebuild` merges each
snapshot's adapters into the target's W0 with peft's own merge, as the run would have saved at that
step (on the CPU, in the training dtype), and gives the merged weights of the adapted layers to copy
over the final model. LoRA runs saved as bare adapters (`save: adapter`) are refused.
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


def snapshot_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"step-{step:07d}"


def snapshot_steps(every: int, total_steps: int) -> list[int]:
    """K, 2K, ... strictly before the final step (the final model is saved and evaluated anyway)."""
    return list(range(every, total_steps, every))


def check_supported(parametrization_args: dict | None = None) -> None:
    """Every parametrization snapshots its `trainable_state`; only a run saved as a bare adapter
    (LoRA's `save: adapter`, an argument, not a name) leaves no evaluable model to copy them into."""
    if (parametrization_args or {}).get("save") == "adapter":
        raise ValueError("evaluate_every needs LoRA's merged save (parametrization_args.save: merged, the "
                         "default): a bare adapter folder is not an evaluable model")


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
    """Non-tensor state a snapshot needs besides the parameters: what every `SnapshotExtras`
    submodule declares (GRUN: the learned prompt suffix)."""
    from methods.parametrizations.base import SnapshotExtras

    extras = {}
    for module in model.modules():
        if isinstance(module, SnapshotExtras):
            extras.update(module.snapshot_extras())
    return extras


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
    from methods.parametrizations.base import SnapshotExtras

    for module in model.modules():
        if isinstance(module, SnapshotExtras):
            module.load_snapshot_extras(extras)


class LoraRebuild:
    """Snapshot adapters → the merged weights of the adapted linear layers (HF parameter names).

    `base` is the run's target (its W0), loaded in the run's training dtype; it is wrapped with the
    run's LoRA settings once. Per snapshot: load the adapters, let peft merge each layer (W0 + delta,
    rounded to W0's dtype, as `merge_and_unload` did when the run saved), read the merged weight,
    then put W0 back bit for bit."""

    PREFIX = "base_model.model."

    def __init__(self, base: torch.nn.Module, parametrization_args: dict):
        from peft.tuners.lora import LoraLayer

        from methods import precision
        from methods.parametrizations.lora import LoRA

        self.parametrization = LoRA(**parametrization_args)
        self.model = self.parametrization.prepare(base, needs_reference=False)
        precision.upcast_trainable(self.parametrization.trainable_parameters(self.model))  # as train() does
        self.layers = {name.removeprefix(self.PREFIX): module for name, module in self.model.named_modules()
                       if isinstance(module, LoraLayer)}
        self.base = {name: layer.get_base_layer().weight.detach().clone() for name, layer in self.layers.items()}

    @torch.no_grad()
    def __call__(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.parametrization.load_trainable_state(self.model, state)
        merged = {}
        for name, layer in self.layers.items():
            layer.merge()
            merged[f"{name}.weight"] = layer.get_base_layer().weight.detach().clone()
            layer.unmerge()
            layer.get_base_layer().weight.copy_(self.base[name])
        return merged
