"""RMU (WMDP): steer forget activations at one block towards a fixed random direction, keep retain
activations where the frozen model has them.

L_f = token mean of (1/d)·‖h^ℓ_θ(x_f) − c·u‖², u ~ U[0,1)^d drawn once (seeded) and normalised;
L_r = token mean of (1/d)·‖h^ℓ_θ(x_r) − h^ℓ_ref(x_r)‖², weight α. h^ℓ is the output of block ℓ
(`model.layers[ℓ]`, as the official hook). Which parameters train is the parametrization's job:
the WMDP recipe trains only layers 5–7 `mlp.down_proj` (parametrization `subset`).

Presets (`preset:`), explicit arguments win:
- `wmdp-zephyr` (official centerforaisafety/wmdp, Zephyr-7B-β): layer 7, c 6.5, α 1200, no mask
  (MSE over every position, padding included); pair with parametrization `subset` (default params =
  layers 5–7 down_proj), lr 5e-5, batch 4, 150 steps — see ZEPHYR_TRAINING.
- none (OU TOFU defaults): layer 7, c 2, α 1, masked per-token mean over labelled tokens, all params.
`mask`: "none" (official WMDP), "labels" (OU: labels ≠ −100), "attention" (non-padding tokens).
"""
from __future__ import annotations

from typing import Optional

import torch

from methods.objectives.base import Objective
from methods.registry import OBJECTIVES

MASKS = ("none", "labels", "attention")
PRESETS = {"wmdp-zephyr": {"layer": 7, "steering_coeff": 6.5, "retain_weight": 1200.0, "mask": "none"}}
ZEPHYR_TRAINING = {"lr": 5e-5, "batch_size": 4, "max_steps": 150, "scheduler": "constant",
                        "parametrization": "subset",
                        "parametrization_args": {"params": ["model.layers.[5-7].mlp.down_proj.weight"]}}


def control_vector(hidden: int, seed: int, device) -> torch.Tensor:
    """u ~ U[0,1)^d from its own seeded generator, normalised to unit length."""
    u = torch.rand(hidden, generator=torch.Generator().manual_seed(seed))
    return (u / u.norm()).to(device)


def position_mask(batch: dict[str, torch.Tensor], mode: str) -> Optional[torch.Tensor]:
    """[B, T] float weights of the positions the MSE averages over; None = every position."""
    if mode == "none":
        return None
    if mode == "labels":
        return (batch["labels"] != -100).float()
    return batch["attention_mask"].float()


def activation_mse(hidden: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Token mean of (1/d)·‖h − target‖² (torch MSE when mask is None)."""
    per_token = (hidden.float() - target.float()).pow(2).mean(dim=-1)
    if mask is None:
        return per_token.mean()
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def decoder_blocks(model) -> torch.nn.ModuleList:
    base = getattr(model, "module", model)                      # DDP
    base = getattr(base, "get_base_model", lambda: base)()       # peft
    layers = getattr(getattr(base, "model", None), "layers", None)
    if layers is None:
        raise ValueError(f"rmu cannot find the decoder blocks of {type(base).__name__} (expected model.model.layers)")
    return layers


def block_output(model, batch, layer: int) -> torch.Tensor:
    """Output of block `layer` of `model` on `batch` (the forward still runs to the end)."""
    blocks = decoder_blocks(model)
    if not 0 <= layer < len(blocks):
        raise ValueError(f"rmu layer {layer} does not exist: the model has {len(blocks)} blocks (0..{len(blocks) - 1}); "
                         "set objective_args.layer")
    captured = {}

    def grab(module, args, output):
        captured["h"] = output[0] if isinstance(output, tuple) else output

    handle = blocks[layer].register_forward_hook(grab)
    try:
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    finally:
        handle.remove()
    return captured["h"]


def reference_block_output(reference, block_type: type, batch, layer: int) -> torch.Tensor:
    """Output of block `layer` inside the frozen reference forward.

    The loop hands objectives a reference *function* (a frozen copy for `full`, adapters or edits
    switched off for LoRA/GRUN), so the block is found as the (layer+1)-th call of a module of the
    trained model's block type during that call (a global hook, removed right after).
    """
    calls = []

    def grab(module, args, output):
        if type(module) is block_type:
            calls.append(output[0] if isinstance(output, tuple) else output)

    handle = torch.nn.modules.module.register_module_forward_hook(grab)
    try:
        reference(batch)
    finally:
        handle.remove()
    if len(calls) <= layer:
        raise RuntimeError(f"rmu saw {len(calls)} {block_type.__name__} calls in the reference forward, needs layer {layer}")
    return calls[layer]


@OBJECTIVES.register("rmu")
class RMU(Objective):
    streams = ("forget", "retain")
    defaults = {"preset": None, "layer": 7, "steering_coeff": 2.0, "forget_weight": 1.0, "retain_weight": 1.0,
                "mask": "labels", "seed": 42}

    def __init__(self, **args):
        preset = args.get("preset")
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"rmu preset must be one of {sorted(PRESETS)} or null, got {preset!r}")
        super().__init__(**{**PRESETS.get(preset, {}), **args})
        if self.args["mask"] not in MASKS:
            raise ValueError(f"rmu mask must be one of {MASKS}, got {self.args['mask']!r}")
        self.u: Optional[torch.Tensor] = None

    @property
    def needs_reference(self):
        return True

    def weights(self):
        return {"forget": float(self.args["forget_weight"]), "retain": float(self.args["retain_weight"])}

    def losses(self, model, batches, reference):
        layer, mode = int(self.args["layer"]), self.args["mask"]
        forget, retain = batches["forget"], batches["retain"]
        h_forget = block_output(model, forget, layer)
        if self.u is None or self.u.device != h_forget.device:
            self.u = control_vector(h_forget.size(-1), int(self.args["seed"]), h_forget.device)
        target = float(self.args["steering_coeff"]) * self.u
        h_retain = block_output(model, retain, layer)
        block_type = type(decoder_blocks(model)[layer])
        with torch.no_grad():
            h_reference = reference_block_output(reference, block_type, retain, layer)
        return {"forget": activation_mse(h_forget, target.expand_as(h_forget), position_mask(forget, mode)),
                "retain": activation_mse(h_retain, h_reference, position_mask(retain, mode))}
