"""Symmetric PCGrad (Yu et al. 2020), two tasks, global: if ⟨g_f,g_r⟩ < 0 project each off the
other (both from the original pair): g = γ·(g_f − d/‖g_r‖²·g_r) + α·(g_r − d/‖g_f‖²·g_f)."""
from __future__ import annotations

from methods.gradspace import GradSpace
from methods.rectifiers.base import Combined, Rectifier, on_two_buffers, two_task_update
from methods.registry import RECTIFIERS


def symmetric_coefficients(ff: float, fr: float, rr: float, gamma: float, alpha: float) -> tuple[float, float, bool]:
    """(a, b, intervened) with g = a·g_f + b·g_r."""
    if fr < 0:  # d < 0 implies both norms are non-zero
        return gamma - alpha * fr / ff, alpha - gamma * fr / rr, True
    return gamma, alpha, False


def pcgrad_symmetric(g_f, g_r, gamma: float, alpha: float, space: GradSpace) -> Combined:
    return on_two_buffers(symmetric_coefficients, g_f, g_r, gamma, alpha, space)


@RECTIFIERS.register("pcgrad-sym")
class PCGradSymmetric(Rectifier):
    def combine(self, tasks, space):
        return two_task_update(symmetric_coefficients, tasks, self.gram(tasks, space), space)
