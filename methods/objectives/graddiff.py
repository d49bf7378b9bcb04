"""GradDiff: −CE on forget, plus a retain term: NLL̄ (default) or KL to the frozen start model
(`retain_loss`; methods/objectives/retain.py states the exact KL direction and masking).
"""
from __future__ import annotations

from methods import tokens
from methods.objectives.retain import RetainLossOption
from methods.registry import OBJECTIVES


@OBJECTIVES.register("graddiff")
class GradDiff(RetainLossOption):
    defaults = {"forget_weight": 1.0, "retain_weight": 1.0, "retain_loss": "nll"}

    def losses(self, model, batches, reference):
        forget = batches["forget"]
        return {"forget": -tokens.mean_nll(tokens.logits_of(model, forget), forget["labels"]),
                "retain": self.retain(model, batches, reference)}
