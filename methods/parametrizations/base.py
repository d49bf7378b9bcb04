"""The parametrization interface.

prepare(model, needs_reference) decides which parameters train (returns them by name) and sets up
whatever the reference forward needs; reference_logits(model, batch) evaluates the frozen starting
model (full: a deep copy; LoRA: adapters disabled; GRUN: interventions off) without gradients;
trainable_state / load_trainable_state checkpoint only what trains; save writes a usable model.

What the rest of the suite needs to know about a parametrization is a class property, read after
`PARAMETRIZATIONS.get(name)` (job time; config checks read names only), never a comparison of names:
`fsdp_savable`, `copies_reference`, `reports_gates`, `snapshots_need_base` below. A model whose
forward a parametrization changes carries a plain attribute the evaluation reads without knowing the
parametrization: `EDITS_PROMPT_POSITIONS` (True on GRUN models: edits at the prompt's last position,
found from the whole input, so no prefix sharing, no split head, no plain greedy or vLLM decoding)
and `EDITS_NEED_ATTENTION_MASK` (True while such a model finds that position from the attention
mask: a scorer that right-pads a batch without passing the mask scores one row at a time). A
submodule with non-tensor state a trajectory snapshot must carry is a `SnapshotExtras`.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from methods.registry import parse_args

EDITS_PROMPT_POSITIONS = "edits_prompt_positions"  # model attribute; getattr(model, it, False)
EDITS_NEED_ATTENTION_MASK = "edits_need_attention_mask"  # model attribute; getattr(model, it, False)


class SnapshotExtras:
    """Mixin of a submodule whose non-tensor state a trajectory snapshot carries next to the tensors
    (GRUN's edits: the prompt suffix learned so far); `methods.snapshots` collects and restores it
    from every such submodule of the model. Keys are the snapshot file's, so they stay stable."""

    def snapshot_extras(self) -> dict:
        raise NotImplementedError

    def load_snapshot_extras(self, extras: dict) -> None:
        raise NotImplementedError


class Parametrization:
    name: str = "?"
    defaults: dict = {}
    extra_streams: tuple[str, ...] = ()  # streams its extra tasks read (GRUN's gate BCE: forget, retain)
    # its save() writes unsharded state only: refuse an FSDP2 launch before training, not after it
    fsdp_savable: bool = True
    # the reference forward runs a frozen deep copy of the start model (memory: one more model)
    copies_reference: bool = False
    # its saved model has gates whose forget/retain separation the evaluation reports (GRUN)
    reports_gates: bool = False
    # trajectory snapshots are merged into the run's starting weights before evaluation (LoRA)
    snapshots_need_base: bool = False
    # every weight of the model trains (a snapshot is the whole model); read from source by the
    # snapshot disk plan (Registry.class_constant), so set it as a literal in the class body
    trains_every_weight: bool = False

    def __init__(self, **args):
        self.args = parse_args(f"parametrization {self.name!r}", args, self.defaults)

    def prepare(self, model: nn.Module, needs_reference: bool) -> nn.Module:
        """Return the model to train (may wrap `model`); only trainable parameters keep requires_grad."""
        raise NotImplementedError

    def extra_weights(self) -> dict[str, float]:
        """Task name → weight of tasks this parametrization adds to the objective's (GRUN: gate BCE)."""
        return {}

    def task_losses(self, objective, model: nn.Module, batches: dict, reference, step: int) -> dict[str, torch.Tensor]:
        """The micro-batch's named task losses; a parametrization may wrap the objective's forward
        (GRUN: tell the edits where the prompt ends, add the gate loss, warm-up weighting)."""
        return objective.losses(model, batches, reference)

    def trainable_parameters(self, model: nn.Module) -> list[tuple[str, nn.Parameter]]:
        return [(name, p) for name, p in model.named_parameters() if p.requires_grad]

    def reference_logits(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def trainable_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return {name: p.detach().cpu().clone() for name, p in self.trainable_parameters(model)}

    def load_trainable_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        params = dict(self.trainable_parameters(model))
        missing = sorted(set(params) - set(state))
        if missing:
            raise ValueError(f"checkpoint lacks trainable parameters {missing[:5]}... (was it saved with another parametrization?)")
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(state[name])

    def save(self, model: nn.Module, path: str | Path, state_dict: dict | None = None) -> None:
        """`state_dict`: the gathered full weights when the model was trained sharded (FSDP2)."""
        model.save_pretrained(str(path), state_dict=state_dict)
