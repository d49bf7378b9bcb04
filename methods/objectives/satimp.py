"""SatImp: −mean_t[p_t^β1·(1 − p_t)^β2·CE_t] over the forget batch's answer tokens, + α·NLL̄_r.

p_t = exp(−CE_t) is detached (a weight). β1 5, β2 1. Weights follow the OU experiment config
(γ 0.1, α 1.0); OU's code defaults (γ 1, α 0.1) disagree with it (PR #192). `retain_loss: kl`
swaps the retain term for the KL to the reference.
"""
from __future__ import annotations

import torch

from methods import tokens
from methods.objectives.retain import RetainLossOption
from methods.registry import OBJECTIVES


def satimp_loss(ce: torch.Tensor, mask: torch.Tensor, beta1: float, beta2: float) -> torch.Tensor:
    p = torch.exp(-ce.detach())
    return -tokens.masked_token_mean(p ** beta1 * (1 - p) ** beta2 * ce, mask)


@OBJECTIVES.register("satimp")
class SatImp(RetainLossOption):
    defaults = {"beta1": 5.0, "beta2": 1.0, "forget_weight": 0.1, "retain_weight": 1.0, "retain_loss": "nll"}

    def losses(self, model, batches, reference):
        forget = batches["forget"]
        ce, mask = tokens.token_ce(tokens.logits_of(model, forget), forget["labels"])
        return {"forget": satimp_loss(ce, mask, float(self.args["beta1"]), float(self.args["beta2"])),
                "retain": self.retain(model, batches, reference)}
