"""SimNPO: −(2/β)·mean_batch log σ(β·(NLL̄_θ − δ)), NLL̄ = NLL/|y| per sequence; + α·NLL̄_r.

Defaults from the OU config (β 4.5, γ 0.125, α 1, δ 0). The paper's margin γ_paper equals β·δ here.
"""
from __future__ import annotations

import torch.nn.functional as F

from methods import tokens
from methods.objectives.base import ForgetRetainObjective
from methods.registry import OBJECTIVES


def simnpo_loss(mean_nll_per_sequence, beta: float, delta: float):
    return -(2.0 / beta) * F.logsigmoid(beta * (mean_nll_per_sequence - delta)).mean()


@OBJECTIVES.register("simnpo")
class SimNPO(ForgetRetainObjective):
    defaults = {"beta": 4.5, "delta": 0.0, "forget_weight": 0.125, "retain_weight": 1.0}

    def losses(self, model, batches, reference):
        forget, retain = batches["forget"], batches["retain"]
        logits = tokens.logits_of(model, forget)
        length_normalised = (tokens.sequence_nll(logits, forget["labels"])
                             / tokens.answer_lengths(forget["labels"]).clamp(min=1))
        return {"forget": simnpo_loss(length_normalised, float(self.args["beta"]), float(self.args["delta"])),
                "retain": tokens.mean_nll(tokens.logits_of(model, retain), retain["labels"])}
