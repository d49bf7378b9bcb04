"""Plain fine-tuning: token-mean NLL on stream 'train' (the TOFU target/retain model recipe)."""
from __future__ import annotations

from methods import tokens
from methods.objectives.base import Objective
from methods.registry import OBJECTIVES


@OBJECTIVES.register("finetune")
class Finetune(Objective):
    streams = ("train",)
    defaults = {}

    def weights(self):
        return {"train": 1.0}

    def losses(self, model, batches, reference):
        batch = batches["train"]
        return {"train": tokens.mean_nll(tokens.logits_of(model, batch), batch["labels"])}
