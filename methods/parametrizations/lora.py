"""LoRA (peft): low-rank adapters on chosen linear modules; the base weights stay frozen.

The reference forward is the same model with its adapters disabled (`disable_adapter()`), so no
second copy of the model is held. `save` merges the adapters into the base weights and writes a
plain Hugging Face model (loadable by the evaluation harness like any other); `save: adapter`
writes only the peft adapter folder instead. `save` accepts the PeftModel or the model that
`train()` was given (peft injects the adapters into it in place).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from methods import tokens
from methods.parametrizations.base import Parametrization
from methods.registry import PARAMETRIZATIONS

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SAVE_MODES = ("merged", "adapter")


@PARAMETRIZATIONS.register("lora")
class LoRA(Parametrization):
    # r 8 as in UNDIAL's original LoRA runs; alpha = 2r and every Llama/Mistral linear by default
    defaults = {"rank": 8, "alpha": 16.0, "dropout": 0.0, "target_modules": ALL_LINEAR, "save": "merged"}
    fsdp_savable = False       # peft's merge and adapter save need the unsharded weights
    snapshots_need_base = True  # the final model is merged: a snapshot's adapters need W0 (LoraRebuild)

    def __init__(self, **args):
        super().__init__(**args)
        if int(self.args["rank"]) < 1:
            raise ValueError(f"lora rank must be >= 1, got {self.args['rank']}")
        if not 0.0 <= float(self.args["dropout"]) < 1.0:
            raise ValueError(f"lora dropout must be in [0, 1), got {self.args['dropout']}")
        if self.args["save"] not in SAVE_MODES:
            raise ValueError(f"lora save must be one of {SAVE_MODES}, got {self.args['save']!r}")

    def prepare(self, model, needs_reference):
        from peft import LoraConfig, get_peft_model

        targets = list(self.args["target_modules"])
        present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        missing = sorted(set(targets) - present)
        if missing:
            raise ValueError(f"lora target_modules {missing} are not modules of {type(model).__name__}; "
                             f"pick from e.g. {sorted(m for m in present if m.endswith('proj'))}")
        config = LoraConfig(r=int(self.args["rank"]), lora_alpha=float(self.args["alpha"]),
                            lora_dropout=float(self.args["dropout"]), target_modules=targets,
                            bias="none", task_type="CAUSAL_LM")
        self.reference = None  # the reference is the same model with adapters disabled
        return get_peft_model(model, config)

    def reference_logits(self, model, batch):
        with torch.no_grad(), model.disable_adapter():
            return tokens.logits_of(model, batch)

    def save(self, model, path, state_dict=None):
        """Into the folder `path` (the caller makes it atomic). Merged: the adapters are folded into the
        base weights in place, so afterwards `model` is a plain Hugging Face model."""
        if state_dict is not None:
            raise NotImplementedError("saving a LoRA model trained under FSDP2 is not supported yet; train "
                                      "LoRA single-process or with DDP (its memory needs rarely call for sharding)")
        if self.args["save"] == "adapter":
            save_adapter(model, path)
        else:
            merge_adapters(model).save_pretrained(str(path))


def save_adapter(model: nn.Module, path) -> None:
    from peft import PeftModel, get_peft_model_state_dict
    from safetensors.torch import save_file

    if isinstance(model, PeftModel):
        model.save_pretrained(str(path))
        return
    config = model.peft_config["default"]
    config.save_pretrained(str(path))
    state = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(state, f"{path}/adapter_model.safetensors")


def merge_adapters(model: nn.Module) -> nn.Module:
    """W ← W + (α/r)·B·A in every adapted layer, then the adapter wrappers are removed."""
    from peft import PeftModel
    from peft.tuners.tuners_utils import BaseTunerLayer

    if isinstance(model, PeftModel):
        return model.merge_and_unload()
    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, module.get_base_layer())
    if hasattr(model, "peft_config"):
        del model.peft_config
    return model
