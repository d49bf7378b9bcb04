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

from methods.rectifiers.base import Combined
from methods.rectifiers.gru import GRU, cos_to_ema, gru_project
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
        self.update_ema(tasks)
        task, g_f, gamma = tasks.forget_side()
        g_r, alpha = tasks.buffers[tasks.retain], tasks.retain_weight
        dot_ff, dot_rf, dot_mf = space.dot(g_f, g_f), space.dot(g_r, g_f), space.dot(self.ema, g_f)
        g_u = g_f.mul_(gamma) if gamma != 1.0 else g_f
        update, c = gru_project(g_u, self.ema, space, self.clip())
        update.add_(g_r, alpha=alpha)
        return Combined(update, intervened=float(c != 0.0),
                        dot_update_forget=gamma * dot_ff - c * dot_mf + alpha * dot_rf,
                        extra={"cos_update_constraint": cos_to_ema(update, self.ema, space)})


@RECTIFIERS.register("gru-ce")
class GRUPlusCE(GRUAfterProjection):
    """GRU's `+ce` branch: project the forget gradient off the EMA retain gradient, then add the retain NLL gradient unprojected."""

    retain_kind = "nll"


@RECTIFIERS.register("gru-kl")
class GRUPlusKL(GRUAfterProjection):
    """GRU's `+KL` branch: as `gru-ce` with a KL retain gradient added after the projection."""

    retain_kind = "kl"
