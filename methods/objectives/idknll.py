"""IdkNLL: token-mean NLL of a refusal answer to each forget question, + α·NLL̄_r.

The forget and retain terms are separate tasks (so rectifiers can see them); TOFU-legacy instead
takes one token mean over the concatenated IDK+retain batch, which weights the two by token count.

The stream 'forget' (the true answers to the same questions) is aligned with 'forget_idk' row by row:
whatever else reads it in the same micro-batch (G-effect's forget-risk probe, GRUN's gate loss) sees
the very questions the refusals answer, as in G-effect's and GRUN's data code (one index for both).
"""
from __future__ import annotations

from methods import tokens
from methods.objectives.base import ForgetRetainObjective
from methods.registry import OBJECTIVES


@OBJECTIVES.register("idknll")
class IdkNLL(ForgetRetainObjective):
    streams = ("forget_idk", "retain")
    aligned_streams = ("forget",)  # built from the same forget pairs in the same order
    defaults = {"forget_weight": 1.0, "retain_weight": 1.0}

    def losses(self, model, batches, reference):
        idk, retain = batches["forget_idk"], batches["retain"]
        return {"forget": tokens.mean_nll(tokens.logits_of(model, idk), idk["labels"]),
                "retain": tokens.mean_nll(tokens.logits_of(model, retain), retain["labels"])}
