"""The retain term shared by forget+retain objectives: NLL̄ on the retain batch, or KL to the frozen
start model (`retain_loss: nll | kl`).

KL follows OU `retain_loss_type=KL` / TOFU-legacy exactly: kl_div(log π_θ, log π_ref, log_target,
batchmean) on logits reshaped to (B·T, V) = KL(π_ref ‖ π_θ) summed over the vocabulary and averaged
over all B·T positions, prompt and padding included (no label mask).
"""
from __future__ import annotations

import torch.nn.functional as F

from methods import tokens
from methods.objectives.base import ForgetRetainObjective

RETAIN_LOSSES = ("nll", "kl")


def kl_to_reference(logits, reference_logits):
    vocab = logits.size(-1)
    log_p = F.log_softmax(logits.float(), dim=-1).reshape(-1, vocab)
    log_ref = F.log_softmax(reference_logits.float(), dim=-1).reshape(-1, vocab)
    return F.kl_div(log_p, log_ref, reduction="batchmean", log_target=True)


def retain_loss(kind, model, batch, reference):
    logits = tokens.logits_of(model, batch)
    if kind == "nll":
        return tokens.mean_nll(logits, batch["labels"])
    return kl_to_reference(logits, reference(batch))


class RetainLossOption(ForgetRetainObjective):
    """Objectives with the `retain_loss: nll | kl` switch; KL needs the frozen reference model."""

    def __init__(self, **args):
        super().__init__(**args)
        if self.args["retain_loss"] not in RETAIN_LOSSES:
            raise ValueError(f"{self.name} retain_loss must be one of {RETAIN_LOSSES}, got {self.args['retain_loss']!r}")

    @property
    def needs_reference(self):
        return self.args["retain_loss"] == "kl"

    @property
    def retain_is_nll(self):
        return self.args["retain_loss"] == "nll"

    def retain(self, model, batches, reference):
        return retain_loss(self.args["retain_loss"], model, batches["retain"], reference)
