"""The rectifier interface: per-task gradients in, one update out, once per optimizer step.

Contract: a rectifier may overwrite the buffer of the forget side (the first objective task) with
the update; it must leave the retain-side and constraint buffers intact (the loop logs
cos(update, retain) from them afterwards).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from methods.gradspace import GradSpace
from methods.registry import parse_args


@dataclass
class TaskGradients:
    """Reduced (all-reduced, accumulation-averaged) per-task gradients of one optimizer step."""
    buffers: dict[str, torch.Tensor]   # task → flat unweighted gradient
    weights: dict[str, float]          # objective task → weight (γ, α, ...)
    retain: Optional[str] = None       # task whose gradient is the retain side for two-task rules
    retain_weight: float = 1.0         # α used by two-task rules
    constraint: Optional[str] = None   # task holding ∇ retain-NLL (GRU's g_c)

    @property
    def objective_tasks(self) -> list[str]:
        return list(self.weights)

    def objective_sum(self) -> torch.Tensor:
        """Σ_k w_k g_k written into the first objective task's buffer (which is returned)."""
        first, *rest = self.objective_tasks
        out = self.buffers[first].mul_(self.weights[first])
        for task in rest:
            out.add_(self.buffers[task], alpha=self.weights[task])
        return out

    def forget_side(self) -> tuple[str, torch.Tensor, float]:
        """(task, g_f, γ): the single non-retain objective task, or their weighted sum with γ = 1."""
        others = [t for t in self.objective_tasks if t != self.retain]
        if len(others) == 1:
            return others[0], self.buffers[others[0]], self.weights[others[0]]
        first, *rest = others
        out = self.buffers[first].mul_(self.weights[first])
        for task in rest:
            out.add_(self.buffers[task], alpha=self.weights[task])
        return first, out, 1.0


@dataclass
class Combined:
    update: torch.Tensor
    intervened: Optional[float] = None      # 1/0, or the fraction of tensors / coordinates changed
    dot_update_forget: Optional[float] = None  # ⟨update, g_f⟩, computed before g_f was overwritten
    extra: dict = field(default_factory=dict)


class Rectifier:
    name: str = "?"
    defaults: dict = {}
    separate_gradients = True  # False: the loop accumulates every w_k ∇L_k into one buffer
    needs_retain = True        # needs a retain-side gradient (objective retain task or retain NLL)
    needs_retain_nll = False   # needs ∇ retain-NLL specifically (GRU's constraint)
    state_copies = 0           # gradient-sized tensors kept across steps (GRU's EMA: 1), for memory plans

    def __init__(self, **args):
        # every rectifier takes retain_weight: α for the retain-NLL task added when the objective has none
        self.args = parse_args(f"rectifier {self.name!r}", args, {"retain_weight": 1.0, **self.defaults})

    def combine(self, tasks: TaskGradients, space: GradSpace) -> Combined:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Cross-step state for checkpoints (host copies)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def state_nbytes(self) -> int:
        """Bytes of cross-step state held on the device, counted without copying it (GRU's EMA is one
        value per trainable parameter: copying it to the host just to count it would cost ~29 GB at 7B)."""
        return 0
