"""GRU (ICML 2025): project the whole objective's gradient g_u off an EMA m of the retain-NLL gradient
g_c when they conflict: g = g_u − min(0, ⟨g_u,m⟩)/‖m‖²·m, global over all trainable parameters.

EMA once per optimizer step, γ_ema weighting the *current* gradient: m_t = γ·g_c + (1−γ)·m_{t−1},
m_0 = 0 (default γ 0.8). m is rectifier state and goes into checkpoints. Optional CosClip (GRU's
`cos_clip`): cos' = max(cos, c), g = g_u − (‖g_u‖·cos'/‖m‖)·m, only when ⟨g_u,m⟩ < 0.
Numerics: fp32 buffers on the training device (the official code projects in CPU float64 NumPy).
"""
from __future__ import annotations

from typing import Optional

import torch

from methods.gradspace import GradSpace, cosine
from methods.rectifiers.base import Combined, Rectifier
from methods.registry import RECTIFIERS


def ema_update(m: torch.Tensor, g_c: torch.Tensor, gamma: float) -> torch.Tensor:
    return m.mul_(1.0 - gamma).add_(g_c, alpha=gamma)


def projection_coefficient(d: float, uu: float, mm: float, cos_clip: Optional[float]) -> float:
    """c such that g = g_u − c·m; 0 when there is no conflict (or m = 0)."""
    if d >= 0 or mm <= 0:
        return 0.0
    if cos_clip is None:
        return d / mm
    cos = d / ((uu * mm) ** 0.5)
    return (uu ** 0.5) * max(cos, cos_clip) / (mm ** 0.5)


def gru_project(g_u, m, space: GradSpace, cos_clip: Optional[float] = None) -> tuple[torch.Tensor, float]:
    """In place: g_u ← g_u − c·m. Returns (g_u, c)."""
    c = projection_coefficient(space.dot(g_u, m), space.dot(g_u, g_u), space.dot(m, m), cos_clip)
    if c != 0.0:
        g_u.add_(m, alpha=-c)
    return g_u, c


def cos_to_ema(update, m, space: GradSpace) -> Optional[float]:
    """cos(update, m) with m the post-EMA reference: GRU guarantees ≥ 0 for the projected update."""
    return cosine(space.dot(update, m), space.norm(update), space.norm(m))


@RECTIFIERS.register("gru")
class GRU(Rectifier):
    defaults = {"gamma": 0.8, "cos_clip": None}  # cos_clip: None (plain projection) or e.g. -0.5
    needs_retain_nll = True
    state_copies = 1  # the EMA m

    def __init__(self, **args):
        super().__init__(**args)
        if not 0.0 < float(self.args["gamma"]) <= 1.0:
            raise ValueError(f"gru gamma (EMA weight of the current gradient) must be in (0, 1], got {self.args['gamma']}")
        self.ema: Optional[torch.Tensor] = None

    def update_ema(self, tasks) -> torch.Tensor:
        g_c = tasks.buffers[tasks.constraint]
        if self.ema is None:
            self.ema = torch.zeros_like(g_c)
        elif self.ema.device != g_c.device:  # restored from a checkpoint on the CPU
            self.ema = self.ema.to(g_c.device)
        return ema_update(self.ema, g_c, float(self.args["gamma"]))

    def clip(self) -> Optional[float]:
        return None if self.args["cos_clip"] is None else float(self.args["cos_clip"])

    def combine(self, tasks, space):
        self.update_ema(tasks)
        forget = tasks.objective_tasks[0]
        g_f = tasks.buffers[forget]
        # ⟨update, g_f⟩ from dot products taken before g_f's buffer is reused for the update
        dot_uf = sum(tasks.weights[t] * space.dot(tasks.buffers[t], g_f) for t in tasks.objective_tasks)
        dot_mf = space.dot(self.ema, g_f)
        g_u = tasks.objective_sum()
        update, c = gru_project(g_u, self.ema, space, self.clip())
        return Combined(update, intervened=float(c != 0.0), dot_update_forget=dot_uf - c * dot_mf,
                        extra={"cos_update_constraint": cos_to_ema(update, self.ema, space)})

    def state_dict(self):
        return {"ema": None if self.ema is None else self.ema.detach().cpu().clone()}

    def state_nbytes(self):
        return 0 if self.ema is None else self.ema.numel() * self.ema.element_size()

    def load_state_dict(self, state):
        self.ema = None if state.get("ema") is None else state["ema"].clone()
