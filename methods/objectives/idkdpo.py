"""IdkDPO (OU DPO + experiment unlearn/tofu/idk; methods.md §2): DPO with a refusal as the preferred
answer and the true forget answer as the rejected one, + α·NLL̄_r.

L_f = −(2/β)·mean_batch log σ(β·[(log π_θ(a_idk) − log π_ref(a_idk)) − (log π_θ(a) − log π_ref(a))]),
log-probabilities summed over answer tokens (log π = −NLL). Streams: forget (q, a) and forget_idk
(q, a_idk), aligned row by row. Defaults β 0.1, γ = α = 1.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from methods import tokens
from methods.objectives.base import ForgetRetainObjective
from methods.registry import OBJECTIVES


def idk_dpo_loss(nll_idk: torch.Tensor, ref_nll_idk: torch.Tensor, nll_answer: torch.Tensor,
                 ref_nll_answer: torch.Tensor, beta: float) -> torch.Tensor:
    preferred = -(nll_idk - ref_nll_idk)       # log π_θ(a_idk) − log π_ref(a_idk)
    rejected = -(nll_answer - ref_nll_answer)  # log π_θ(a) − log π_ref(a)
    return -(2.0 / beta) * F.logsigmoid(beta * (preferred - rejected)).mean()


@OBJECTIVES.register("idkdpo")
class IdkDPO(ForgetRetainObjective):
    streams = ("forget", "forget_idk", "retain")
    aligned_streams = ("forget_idk",)
    defaults = {"beta": 0.1, "forget_weight": 1.0, "retain_weight": 1.0}

    @property
    def needs_reference(self):
        return True

    def losses(self, model, batches, reference):
        forget, idk, retain = batches["forget"], batches["forget_idk"], batches["retain"]
        nll = {name: tokens.sequence_nll(tokens.logits_of(model, b), b["labels"]) for name, b in
               (("answer", forget), ("idk", idk))}
        ref = {name: tokens.sequence_nll(reference(b), b["labels"]) for name, b in (("answer", forget), ("idk", idk))}
        return {"forget": idk_dpo_loss(nll["idk"], ref["idk"], nll["answer"], ref["answer"], float(self.args["beta"])),
                "retain": tokens.mean_nll(tokens.logits_of(model, retain), retain["labels"])}
