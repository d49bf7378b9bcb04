"""The objective interface: which streams it reads, which named task losses it returns.

The training loop minimises Σ_k weight_k · loss_k; rectifiers see the per-task gradients.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from methods.registry import parse_args

Batch = dict[str, torch.Tensor]
# reference(batch) -> logits of the frozen starting model, computed without gradients
ReferenceForward = Callable[[Batch], torch.Tensor]


class Objective:
    name: str = "?"
    streams: tuple[str, ...] = ()          # streams read; the first one defines the epoch
    aligned_streams: tuple[str, ...] = ()  # indexed like the first stream (same length), not paired at random
    defaults: dict = {}                    # every accepted argument with its reference default
    required_args: tuple[str, ...] = ()    # arguments with no usable default (a tuple literal: config checks read it from source)

    def __init__(self, **args):
        self.args = parse_args(f"objective {self.name!r}", args, self.defaults)

    @property
    def needs_reference(self) -> bool:
        return False

    @property
    def retain_is_nll(self) -> bool:
        """True when the task 'retain' is the token-mean NLL on the retain stream (GRU reuses it)."""
        return False

    def weights(self) -> dict[str, float]:
        """Task name → weight in the minimised sum (γ forget, α retain)."""
        raise NotImplementedError

    def losses(self, model, batches: dict[str, Batch], reference: Optional[ReferenceForward]) -> dict[str, torch.Tensor]:
        """Unweighted named task losses for one micro-batch (keys = keys of `weights()`)."""
        raise NotImplementedError

    # ---- state that evolves during training (PDU's dual variable); stateless objectives keep the defaults
    def begin_step(self, step: int, epoch: int) -> None:
        """Called before the micro-batches of optimizer step `step` (0-based) of epoch `epoch` (0-based)."""

    def end_micro_batch(self, counted: bool) -> None:
        """Called after each micro-batch's backward; `counted` is False for the zero-weight repeats
        that pad a partial window under FSDP (they must not move any state)."""

    def log_state(self) -> dict:
        """Values recorded in the train log row of each optimizer step (under `objective_state`)."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned (checkpoint resume)."""


class ForgetRetainObjective(Objective):
    """Shared shape: a forget loss on stream 'forget' plus α·NLL̄ on 'retain' (OU convention)."""
    streams = ("forget", "retain")

    @property
    def retain_is_nll(self) -> bool:
        return True

    def weights(self) -> dict[str, float]:
        return {"forget": float(self.args["forget_weight"]), "retain": float(self.args["retain_weight"])}
