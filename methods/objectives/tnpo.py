"""Token-wise NPO (G-effect): −mean_t[w_t·CE_t], w_t = 2p_t^β / (p_t^β + (p_t^ref)^β + 1e-5).

No retain term by default (GE `tnpo`); `retain_loss: kl` adds the KL retain task of GE `*_kl`
(same KL as graddiff). β = 4 (GE). The mean is over all answer tokens of the forget batch.
"""
from __future__ import annotations

import torch

from methods import tokens
from methods.objectives.base import Objective
from methods.objectives.retain import kl_to_reference
from methods.registry import OBJECTIVES


def token_npo_loss(ce, reference_ce, mask, beta: float, extra_exponent: float = 0.0):
    """w_t = 2p_t^(β+extra) / (p_t^β + p_ref,t^β + 1e-5); extra = 0 is TNPO, extra = α is WTNPO."""
    p = torch.exp(-ce.detach())
    p_ref = torch.exp(-reference_ce)
    weight = 2 * p ** (beta + extra_exponent) / (p ** beta + p_ref ** beta + 1e-5)
    return -tokens.masked_token_mean(weight * ce, mask)


class TokenNPOBase(Objective):
    streams = ("forget", "retain")

    def __init__(self, **args):
        super().__init__(**args)
        if self.args["retain_loss"] not in ("none", "kl"):
            raise ValueError(f"{self.name} retain_loss must be 'none' or 'kl', got {self.args['retain_loss']!r}")
        if self.args["retain_loss"] == "none":
            self.streams = ("forget",)

    @property
    def needs_reference(self):
        return True

    def weights(self):
        weights = {"forget": float(self.args["forget_weight"])}
        if self.args["retain_loss"] == "kl":
            weights["retain"] = float(self.args["retain_weight"])
        return weights

    def extra_exponent(self) -> float:
        return 0.0

    def losses(self, model, batches, reference):
        forget = batches["forget"]
        ce, mask = tokens.token_ce(tokens.logits_of(model, forget), forget["labels"])
        reference_ce, _ = tokens.token_ce(reference(forget), forget["labels"])
        out = {"forget": token_npo_loss(ce, reference_ce, mask, float(self.args["beta"]), self.extra_exponent())}
        if self.args["retain_loss"] == "kl":
            retain = batches["retain"]
            out["retain"] = kl_to_reference(tokens.logits_of(model, retain), reference(retain))
        return out


@OBJECTIVES.register("tnpo")
class TNPO(TokenNPOBase):
    defaults = {"beta": 4.0, "forget_weight": 1.0, "retain_weight": 1.0, "retain_loss": "none"}
