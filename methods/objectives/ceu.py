"""CE-U (arXiv 2503.01224): cross-entropy towards the model's own detached distribution with the
gold token removed: q = softmax(stopgrad z_θ with z_gold = −∞), L = mean over answer positions of
CE(q, softmax z_θ), skipping the first n = 1 answer token of each sequence (OU CEU). No retain term.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from methods import tokens
from methods.objectives.base import Objective
from methods.registry import OBJECTIVES


def skip_first_answer_tokens(mask: torch.Tensor, n: int) -> torch.Tensor:
    """Drop each row's first n labelled positions from the mask."""
    seen = mask.long().cumsum(dim=-1)
    return mask & (seen > n)


def ceu_loss(logits: torch.Tensor, labels: torch.Tensor, skip: int) -> torch.Tensor:
    logits = logits[:, :-1].float()
    targets = labels[:, 1:]
    mask = skip_first_answer_tokens(targets != tokens.IGNORE, skip)
    gold = F.one_hot(targets.clamp(min=0), logits.size(-1)).bool()
    q = F.softmax(logits.detach().masked_fill(gold, float("-inf")), dim=-1)
    ce = -(q * F.log_softmax(logits, dim=-1)).sum(-1)
    return tokens.masked_token_mean(ce, mask)


@OBJECTIVES.register("ceu")
class CEU(Objective):
    streams = ("forget",)
    defaults = {"skip_first": 1, "forget_weight": 1.0}

    def weights(self):
        return {"forget": float(self.args["forget_weight"])}

    def losses(self, model, batches, reference):
        forget = batches["forget"]
        return {"forget": ceu_loss(tokens.logits_of(model, forget), forget["labels"], int(self.args["skip_first"]))}
