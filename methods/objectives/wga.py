"""Weighted gradient ascent: −mean_t[p_t^β·CE_t] over the forget batch's answer tokens, + α·NLL̄_r.

p_t = exp(−CE_t) is detached (a weight, not a path for gradients). OU defaults β = 1, γ = α = 1.
"""
from __future__ import annotations

import torch

from methods import tokens
from methods.objectives.base import ForgetRetainObjective
from methods.registry import OBJECTIVES


def wga_loss(ce: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    weight = torch.exp(-ce.detach()) ** beta
    return -tokens.masked_token_mean(weight * ce, mask)


@OBJECTIVES.register("wga")
class WGA(ForgetRetainObjective):
    defaults = {"beta": 1.0, "forget_weight": 1.0, "retain_weight": 1.0}

    def losses(self, model, batches, reference):
        forget, retain = batches["forget"], batches["retain"]
        ce, mask = tokens.token_ce(tokens.logits_of(model, forget), forget["labels"])
        return {"forget": wga_loss(ce, mask, float(self.args["beta"])),
                "retain": tokens.mean_nll(tokens.logits_of(model, retain), retain["labels"])}
