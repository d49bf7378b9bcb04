"""Gradient ascent: minimise −(HF token-mean CE) on the forget batch (OU GradAscent)."""
from __future__ import annotations

from methods import tokens
from methods.objectives.base import Objective
from methods.registry import OBJECTIVES


@OBJECTIVES.register("ga")
class GradientAscent(Objective):
    streams = ("forget",)
    defaults = {"forget_weight": 1.0}

    def weights(self):
        return {"forget": float(self.args["forget_weight"])}

    def losses(self, model, batches, reference):
        forget = batches["forget"]
        return {"forget": -tokens.mean_nll(tokens.logits_of(model, forget), forget["labels"])}
