"""Weighted token-wise NPO (G-effect `wtnpo_{α}`): TNPO with w_t = 2p_t^(β+α)/(p_t^β + p_ref,t^β + 1e-5).

Defaults β = 4, α = 1.5 (the exponent; the retain weight is `retain_weight`).
"""
from __future__ import annotations

from methods.objectives.tnpo import TokenNPOBase
from methods.registry import OBJECTIVES


@OBJECTIVES.register("wtnpo")
class WTNPO(TokenNPOBase):
    defaults = {"beta": 4.0, "alpha": 1.5, "forget_weight": 1.0, "retain_weight": 1.0, "retain_loss": "none"}

    def extra_exponent(self):
        return float(self.args["alpha"])
