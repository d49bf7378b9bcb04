"""GRU's `+ce` and `+KL` branches (tmlr-group/GRU `*_gru+ce`, `*_gru+KL`; methods.md §2-3): project
only the forget side g_u = γ·g_f off the EMA m of the retain-NLL gradient, then add the retain
gradient *unprojected*: g = g_u − min(0, ⟨g_u,m⟩)/‖m‖²·m + α·g_r.

`gru-ce`: g_r = this step's retain-NLL gradient (the same one the EMA reads); use it with a
forget-only objective (ga, npo_forget, simnpo_forget, wga_forget), the loop then adds the retain-NLL
task with α = the rectifier's `retain_weight`, or with an objective whose retain task is the NLL
(α = its retain_weight). `gru-kl`: g_r = the KL-to-reference gradient, from an objective with a KL
retain task (npo_kl, simnpo_kl, wga_kl, graddiff retain_loss kl). GRU ran both with coefficient 1.0
(ce_coeff, KL_coef), i.e. α = 1. Only the projected part keeps ⟨·, m⟩ ≥ 0; the added term may not.
"""
from __future__ import annotations

from methods.rectifiers.base import forget_side_coefficients
from methods.rectifiers.gru import GRU, projected_update
from methods.registry import RECTIFIERS


class GRUAfterProjection(GRU):
    retain_kind = "?"  # "nll" or "kl": what the retain task must be

    def check(self, tasks) -> None:
        is_nll = tasks.retain == tasks.constraint
        if (self.retain_kind == "nll") != is_nll:
            want = ("the retain NLL (a forget-only objective, or one with retain_loss nll)" if self.retain_kind == "nll"
                    else "a KL to the reference (npo_kl, simnpo_kl, wga_kl, graddiff with retain_loss: kl)")
            raise ValueError(f"rectifier {self.name!r} adds the objective's retain gradient after the projection, "
                             f"and it must be {want}; got retain task {tasks.retain!r}")

    def combine(self, tasks, space):
        self.check(tasks)
        forget, gamma = forget_side_coefficients(tasks)
        g_u = {t: gamma * c for t, c in forget.items()}
        return projected_update(self, tasks, space, g_u, {tasks.retain: tasks.retain_weight})


@RECTIFIERS.register("gru-ce")
class GRUPlusCE(GRUAfterProjection):
    """GRU's `+ce` branch: project the forget gradient off the EMA retain gradient, then add the retain NLL gradient unprojected."""

    retain_kind = "nll"


@RECTIFIERS.register("gru-kl")
class GRUPlusKL(GRUAfterProjection):
    """GRU's `+KL` branch: as `gru-ce` with a KL retain gradient added after the projection."""

    retain_kind = "kl"
