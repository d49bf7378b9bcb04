"""Symmetric PCGrad (Yu et al. 2020), two tasks, global: if ⟨g_f,g_r⟩ < 0 project each off the
other (both from the original pair): g = γ·(g_f − d/‖g_r‖²·g_r) + α·(g_r − d/‖g_f‖²·g_f)."""
from __future__ import annotations

from methods.gradspace import GradSpace
from methods.rectifiers.base import Combined, Rectifier
from methods.registry import RECTIFIERS


def pcgrad_symmetric(g_f, g_r, gamma: float, alpha: float, space: GradSpace) -> Combined:
    d, rr, ff = space.dot(g_f, g_r), space.dot(g_r, g_r), space.dot(g_f, g_f)
    if d < 0:  # d < 0 implies both norms are non-zero
        forget_coef, retain_coef = gamma - alpha * d / ff, alpha - gamma * d / rr
    else:
        forget_coef, retain_coef = gamma, alpha
    update = g_f.mul_(forget_coef).add_(g_r, alpha=retain_coef)
    return Combined(update, intervened=float(d < 0), dot_update_forget=forget_coef * ff + retain_coef * d)


@RECTIFIERS.register("pcgrad-sym")
class PCGradSymmetric(Rectifier):
    def combine(self, tasks, space):
        _, g_f, gamma = tasks.forget_side()
        return pcgrad_symmetric(g_f, tasks.buffers[tasks.retain], gamma, tasks.retain_weight, space)
