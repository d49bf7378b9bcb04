"""Forget-only variants of NPO, WGA and IdkNLL, as G-effect (arXiv 2502.19301) ran them: the forget
term alone, no retain task (GE `npo`, `wga`, `idk` losses). GA, TNPO and WTNPO are forget-only
already. With rectifier `none` the update is γ·∇L_f; a rectifier that needs a retain gradient adds
the loop's retain-NLL task (GRU's `+ce` branch: methods/rectifiers/gru_after.py).
"""
from __future__ import annotations

from methods import tokens
from methods.objectives.idknll import IdkNLL
from methods.objectives.npo import NPO, npo_loss
from methods.objectives.simnpo import SimNPO, simnpo_loss
from methods.objectives.wga import WGA, wga_loss
from methods.registry import OBJECTIVES


class ForgetOnly:
    """Mixin: one task, 'forget'; the retain stream is not read."""

    @property
    def retain_is_nll(self):
        return False

    def weights(self):
        return {"forget": float(self.args["forget_weight"])}


@OBJECTIVES.register("npo_forget")
class NPOForget(ForgetOnly, NPO):
    """NPO's forget term alone, no retain task (G-effect's `npo`)."""

    streams = ("forget",)
    defaults = {"beta": 0.1, "forget_weight": 1.0}

    def losses(self, model, batches, reference):
        forget = batches["forget"]
        nll = tokens.sequence_nll(tokens.logits_of(model, forget), forget["labels"])
        reference_nll = tokens.sequence_nll(reference(forget), forget["labels"])
        return {"forget": npo_loss(nll, reference_nll, float(self.args["beta"]))}


@OBJECTIVES.register("wga_forget")
class WGAForget(ForgetOnly, WGA):
    """WGA's forget term alone, no retain task (G-effect's `wga`)."""

    streams = ("forget",)
    defaults = {"beta": 1.0, "forget_weight": 1.0}

    def losses(self, model, batches, reference):
        forget = batches["forget"]
        ce, mask = tokens.token_ce(tokens.logits_of(model, forget), forget["labels"])
        return {"forget": wga_loss(ce, mask, float(self.args["beta"]))}


@OBJECTIVES.register("simnpo_forget")
class SimNPOForget(ForgetOnly, SimNPO):
    """GRU's `simnpo` / `simnpo_gru+ce` forget term: β from the config, δ 0, weight 1."""
    streams = ("forget",)
    defaults = {"beta": 4.5, "delta": 0.0, "forget_weight": 1.0}

    def losses(self, model, batches, reference):
        forget = batches["forget"]
        logits = tokens.logits_of(model, forget)
        per_sequence = tokens.sequence_nll(logits, forget["labels"]) / tokens.answer_lengths(forget["labels"]).clamp(min=1)
        return {"forget": simnpo_loss(per_sequence, float(self.args["beta"]), float(self.args["delta"]))}


@OBJECTIVES.register("idknll_forget")
class IdkNLLForget(ForgetOnly, IdkNLL):
    """NLL of a refusal answer to each forget question alone, no retain task (G-effect's `idk`)."""

    streams = ("forget_idk",)
    defaults = {"forget_weight": 1.0}

    def losses(self, model, batches, reference):
        idk = batches["forget_idk"]
        return {"forget": tokens.mean_nll(tokens.logits_of(model, idk), idk["labels"])}
