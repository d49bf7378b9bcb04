"""KL-retain variants of the NLL-retain objectives (OU `retain_loss_type=KL`, TOFU-legacy "KL"):
npo_kl, simnpo_kl, wga_kl. The forget term is unchanged; the retain term is graddiff's KL(π_ref‖π_θ)
over every position. GradDiff (`retain_loss: kl`) and TNPO/WTNPO (`retain_loss: kl`, G-effect's
*_kl) have the switch built in. Unlike G-effect's `npo_kl`, β and the KL weight are independent.
"""
from __future__ import annotations

from methods import tokens
from methods.objectives.retain import kl_to_reference
from methods.objectives.npo import NPO, npo_loss
from methods.objectives.simnpo import SimNPO, simnpo_loss
from methods.objectives.wga import WGA, wga_loss
from methods.registry import OBJECTIVES


class KLRetain:
    """Mixin: the retain task is the KL to the frozen reference (needs it; not an NLL for GRU)."""

    @property
    def needs_reference(self):
        return True

    @property
    def retain_is_nll(self):
        return False

    @staticmethod
    def kl_retain(model, batches, reference):
        retain = batches["retain"]
        return kl_to_reference(tokens.logits_of(model, retain), reference(retain))


@OBJECTIVES.register("npo_kl")
class NPOKL(KLRetain, NPO):
    """NPO with the retain term KL(π_ref‖π_θ) instead of NLL (OU `retain_loss_type=KL`)."""

    def losses(self, model, batches, reference):
        forget = batches["forget"]
        nll = tokens.sequence_nll(tokens.logits_of(model, forget), forget["labels"])
        reference_nll = tokens.sequence_nll(reference(forget), forget["labels"])
        return {"forget": npo_loss(nll, reference_nll, float(self.args["beta"])),
                "retain": self.kl_retain(model, batches, reference)}


@OBJECTIVES.register("simnpo_kl")
class SimNPOKL(KLRetain, SimNPO):
    """SimNPO with the retain term KL(π_ref‖π_θ) instead of NLL."""

    def losses(self, model, batches, reference):
        forget = batches["forget"]
        logits = tokens.logits_of(model, forget)
        length_normalised = tokens.sequence_nll(logits, forget["labels"]) / tokens.answer_lengths(forget["labels"]).clamp(min=1)
        return {"forget": simnpo_loss(length_normalised, float(self.args["beta"]), float(self.args["delta"])),
                "retain": self.kl_retain(model, batches, reference)}


@OBJECTIVES.register("wga_kl")
class WGAKL(KLRetain, WGA):
    """WGA with the retain term KL(π_ref‖π_θ) instead of NLL."""

    def losses(self, model, batches, reference):
        forget = batches["forget"]
        ce, mask = tokens.token_ce(tokens.logits_of(model, forget), forget["labels"])
        return {"forget": wga_loss(ce, mask, float(self.args["beta"])),
                "retain": self.kl_retain(model, batches, reference)}
