"""PDU, open-unlearning's primal-dual unlearning (Entesari et al., arXiv 2506.05314; OU
`src/trainer/unlearn/pdu.py`, `configs/trainer/PDU.yaml`, `community/methods/PDU/run.sh`).

Forget: logit-margin flattening, the mean of (max_v z_v − mean_v z_v)² over the positions whose own
label is not −100. OU takes the mask from the labels unshifted: the logits at answer positions
(the last one predicts past the answer), not the logits that predict the answer tokens; kept so.
Retain: the GradDiff retain term (NLL̄, or KL with `retain_loss: kl`), under the constraint
L_r ≤ ε (`retain_loss_eps`, required: OU's `???`, chosen above the start model's retain loss).

OU minimises γ·L_f + λ·(L_r − ε) with the dual variable λ (OU's retain "preference", started at
`retain_weight`) and after each micro-batch's loss, once the warm-up epochs are over, ascends it:
λ ← max(0, λ + η·(L_r − ε)) with that micro-batch's L_r (`dual_update_upon: step`; the update
is per `compute_loss` call, i.e. per micro-batch, not per optimizer step). λ varies inside an
accumulation window, so it is folded into the task: 'retain' = λ·(L_r − ε) with weight 1, which
keeps Σ_k w_k·L_k (and each task gradient a rectifier sees) equal to OU's. λ lives here, is logged
each optimizer step (`objective_state`) and checkpointed. Like OU's per-process trainers, every
rank updates its own λ from its own micro-batches (the log and checkpoint record rank 0's).
`dual_update_upon: epoch` (a pass over the retain data after each epoch) is not implemented.
"""
from __future__ import annotations

import torch

from methods import tokens
from methods.objectives.retain import RetainLossOption
from methods.registry import OBJECTIVES

DUAL_UPDATES = ("step",)


def logit_flattening_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over positions with labels ≠ −100 (same position, no shift) of (max_v z − mean_v z)²."""
    logits = logits.float()
    margin = (logits.max(dim=-1).values - logits.mean(dim=-1)) ** 2
    return tokens.masked_token_mean(margin, labels != tokens.IGNORE)


def dual_ascent(dual: float, retain_loss: float, eps: float, step_size: float) -> float:
    """One projected ascent step on the constraint L_r − ε ≤ 0."""
    return max(0.0, dual + step_size * (retain_loss - eps))


@OBJECTIVES.register("pdu")
class PDU(RetainLossOption):
    required_args = ("retain_loss_eps",)
    # retain_weight: the dual variable's start value (OU's alpha / "pref", 100 in run.sh for TOFU)
    defaults = {"retain_loss_eps": None, "forget_weight": 1.0, "retain_weight": 1.0, "primal_dual": True,
                "dual_step_size": 1.0, "dual_warmup_epochs": 5, "dual_update_upon": "step", "retain_loss": "nll"}

    def __init__(self, **args):
        super().__init__(**args)
        eps = self.args["retain_loss_eps"]
        if isinstance(eps, bool) or not isinstance(eps, (int, float)):
            raise ValueError(f"pdu needs retain_loss_eps (the retain-loss bound ε of the constraint L_r <= ε), got "
                             f"{eps!r}: set objective_args.retain_loss_eps a little above the start model's retain "
                             "loss (OU run.sh: 0.3 on its QA benchmark)")
        if self.args["dual_update_upon"] not in DUAL_UPDATES:
            raise ValueError(f"pdu dual_update_upon must be one of {DUAL_UPDATES} (per micro-batch, as OU's "
                             f"published runs), got {self.args['dual_update_upon']!r}")
        for name in ("dual_step_size", "dual_warmup_epochs", "retain_weight"):
            if float(self.args[name]) < 0:
                raise ValueError(f"pdu {name} must be >= 0, got {self.args[name]!r}")
        self.dual = float(self.args["retain_weight"])
        self.updates = 0            # dual ascent steps taken so far (this rank)
        self._epoch = 0
        self._pending: float | None = None  # L_r of the micro-batch whose loss used the current λ
        self._step_retain: list[float] = []  # L_r of this optimizer step's counted micro-batches

    @property
    def retain_is_nll(self):
        return False  # the task is λ·(L_r − ε), not the plain retain NLL GRU would reuse

    def weights(self):
        return {"forget": float(self.args["forget_weight"]), "retain": 1.0}

    @property
    def dual_updating(self) -> bool:
        return bool(self.args["primal_dual"]) and self._epoch >= int(self.args["dual_warmup_epochs"])

    def losses(self, model, batches, reference):
        forget = batches["forget"]
        retain = self.retain(model, batches, reference)
        self._pending = float(retain.detach())
        eps = float(self.args["retain_loss_eps"])
        return {"forget": logit_flattening_loss(tokens.logits_of(model, forget), forget["labels"]),
                "retain": self.dual * (retain - eps)}

    def begin_step(self, step, epoch):
        self._epoch, self._pending, self._step_retain = int(epoch), None, []

    def end_micro_batch(self, counted):
        retain, self._pending = self._pending, None
        if retain is None or not counted:
            return
        self._step_retain.append(retain)
        if self.dual_updating:
            self.dual = dual_ascent(self.dual, retain, float(self.args["retain_loss_eps"]),
                                    float(self.args["dual_step_size"]))
            self.updates += 1

    def log_state(self):
        """λ after this step's updates, how many updates so far, and this step's mean unscaled L_r
        (the logged task loss 'retain' is λ·(L_r − ε))."""
        seen = self._step_retain
        return {"dual": self.dual, "dual_updates": self.updates, "dual_updating": self.dual_updating,
                "retain_loss": sum(seen) / len(seen) if seen else None}

    def state_dict(self):
        return {"dual": self.dual, "updates": self.updates}

    def load_state_dict(self, state):
        if state:
            self.dual, self.updates = float(state["dual"]), int(state["updates"])
