"""BLUR (SAGO `_apply_blur`): g = γ·g_f + α·(g_r − ⟨g_r,g_f⟩/(‖g_f‖² + 1e-10)·g_f), global,
applied unconditionally (the retain gradient loses its component along g_f)."""
from __future__ import annotations

from methods.gradspace import GradSpace
from methods.rectifiers.base import Combined, Rectifier, on_two_buffers, two_task_update
from methods.registry import RECTIFIERS

EPS = 1e-10


def blur_coefficients(ff: float, fr: float, rr: float, gamma: float, alpha: float) -> tuple[float, float, bool]:
    """(a, b, intervened) with g = a·g_f + b·g_r, from ‖g_f‖², ⟨g_f,g_r⟩, ‖g_r‖²."""
    return gamma - alpha * fr / (ff + EPS), alpha, True


def blur(g_f, g_r, gamma: float, alpha: float, space: GradSpace) -> Combined:
    return on_two_buffers(blur_coefficients, g_f, g_r, gamma, alpha, space)


@RECTIFIERS.register("blur")
class BLUR(Rectifier):
    def combine(self, tasks, space):
        return two_task_update(blur_coefficients, tasks, self.gram(tasks, space), space)
