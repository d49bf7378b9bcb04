"""NPO: −(2/β)·mean_batch log σ(β·(NLL_θ − NLL_ref)), NLL summed over answer tokens; + α·NLL̄_r.

Gradient: −w·∇NLL_θ per sequence with w = 2π_θ^β/(π_θ^β + π_ref^β): a weighted gradient ascent.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from methods import tokens
from methods.objectives.base import ForgetRetainObjective
from methods.registry import OBJECTIVES


def npo_loss(nll: torch.Tensor, reference_nll: torch.Tensor, beta: float) -> torch.Tensor:
    return -(2.0 / beta) * F.logsigmoid(beta * (nll - reference_nll)).mean()


@OBJECTIVES.register("npo")
class NPO(ForgetRetainObjective):
    defaults = {"beta": 0.1, "forget_weight": 1.0, "retain_weight": 1.0}

    @property
    def needs_reference(self):
        return True

    def losses(self, model, batches, reference):
        forget, retain = batches["forget"], batches["retain"]
        nll = tokens.sequence_nll(tokens.logits_of(model, forget), forget["labels"])
        reference_nll = tokens.sequence_nll(reference(forget), forget["labels"])
        return {"forget": npo_loss(nll, reference_nll, float(self.args["beta"])),
                "retain": tokens.mean_nll(tokens.logits_of(model, retain), retain["labels"])}
