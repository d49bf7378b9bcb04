"""UNDIAL: self-distillation towards the reference with the gold token's logit pushed down by β.

L_f = mean over answer positions of CE(q_t, softmax z_θ,t), q_t = softmax(z_ref,t − β·onehot(y_t));
+ α·NLL̄_r (or KL, `retain_loss: kl`). OU defaults β 10, γ 1, α 0 (lr 1e-4, 10 epochs; the original
used LoRA r 8). Deviation from OU `compute_undial_loss`: it averages over every position and, at
label −100, indexes vocabulary id V − 100; here only labelled positions count.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from methods import tokens
from methods.objectives.retain import RetainLossOption
from methods.registry import OBJECTIVES


def undial_loss(logits: torch.Tensor, reference_logits: torch.Tensor, labels: torch.Tensor, beta: float) -> torch.Tensor:
    logits, reference_logits = logits[:, :-1].float(), reference_logits[:, :-1].float()
    targets = labels[:, 1:]
    mask = targets != tokens.IGNORE
    onehot = F.one_hot(targets.clamp(min=0), logits.size(-1)).float()  # masked positions drop out below
    q = F.softmax(reference_logits - beta * onehot, dim=-1)
    ce = -(q * F.log_softmax(logits, dim=-1)).sum(-1)
    return tokens.masked_token_mean(ce, mask)


@OBJECTIVES.register("undial")
class UNDIAL(RetainLossOption):
    defaults = {"beta": 10.0, "forget_weight": 1.0, "retain_weight": 0.0, "retain_loss": "nll"}

    @property
    def needs_reference(self):
        return True

    def losses(self, model, batches, reference):
        forget = batches["forget"]
        loss = undial_loss(tokens.logits_of(model, forget), reference(forget), forget["labels"], float(self.args["beta"]))
        return {"forget": loss, "retain": self.retain(model, batches, reference)}
