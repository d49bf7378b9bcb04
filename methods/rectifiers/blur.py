"""BLUR (SAGO `_apply_blur`): g = γ·g_f + α·(g_r − ⟨g_r,g_f⟩/(‖g_f‖² + 1e-10)·g_f), global,
applied unconditionally (the retain gradient loses its component along g_f)."""
from __future__ import annotations

from methods.gradspace import GradSpace
from methods.rectifiers.base import Combined, Rectifier
from methods.registry import RECTIFIERS

EPS = 1e-10


def blur(g_f, g_r, gamma: float, alpha: float, space: GradSpace) -> Combined:
    d, ff = space.dot(g_f, g_r), space.dot(g_f, g_f)
    forget_coef = gamma - alpha * d / (ff + EPS)
    update = g_f.mul_(forget_coef).add_(g_r, alpha=alpha)
    return Combined(update, intervened=1.0, dot_update_forget=forget_coef * ff + alpha * d)


@RECTIFIERS.register("blur")
class BLUR(Rectifier):
    def combine(self, tasks, space):
        _, g_f, gamma = tasks.forget_side()
        return blur(g_f, tasks.buffers[tasks.retain], gamma, tasks.retain_weight, space)
