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
from methods.rectifiers.base import Combined, Rectifier, linear_update
from methods.registry import RECTIFIERS


def ema_update(m: torch.Tensor, g_c: torch.Tensor, gamma: float) -> torch.Tensor:
    """m ← (1−γ)·m + γ·g_c, as m + γ·(g_c − m): one operation."""
    return m.lerp_(g_c, gamma)


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


EMA = "ema"  # the Gram row of the EMA before this step's update


def projected_update(rectifier, tasks, space: GradSpace, g_u: dict[str, float], added: dict[str, float]) -> Combined:
    """g = g_u − c·m_t + added, m_t = γ·g_c + (1−γ)·m_{t−1}, with g_u and `added` given as coefficients
    over the task gradients. Everything the rule and the log need comes from the Gram matrix of the
    tasks and m_{t−1}; then one pass updates the EMA and writes g."""
    gram = rectifier.gram(tasks, space)
    gamma = float(rectifier.args["gamma"])
    m_t = {EMA: 1.0 - gamma}
    m_t[tasks.constraint] = m_t.get(tasks.constraint, 0.0) + gamma
    c = projection_coefficient(gram.inner(g_u, m_t), gram.inner(g_u, g_u), gram.inner(m_t, m_t), rectifier.clip())
    written = dict(g_u)  # the update's task terms; the pass adds −c·m_t itself
    for name, coef in added.items():
        written[name] = written.get(name, 0.0) + coef
    update = dict(written)  # the update over the Gram's rows (m_t expanded)
    for name, coef in m_t.items():
        update[name] = update.get(name, 0.0) - c * coef
    out_task = tasks.output_task
    terms = [(coef, tasks.buffers[t]) for t, coef in written.items() if t != out_task]
    own = written.get(out_task, 0.0)
    ema, g_c = rectifier.ema, tasks.buffers[tasks.constraint]

    def step(out, m, g, *others):
        ema_update(m, g, gamma)
        if own != 1.0:
            out.mul_(own)
        for (coef, _), chunk in zip(terms, others):
            out.add_(chunk, alpha=coef)
        if c != 0.0:
            out.add_(m, alpha=-c)

    def write():
        space.foreach(step, tasks.buffers[out_task], ema, g_c, *[v for _, v in terms])
    combined = linear_update(tasks, gram, space, update, float(c != 0.0), write=write)
    if combined.update_sq_norm is None:  # cancellation: measure on the written vectors
        cos = cos_to_ema(combined.update, ema, space)
    else:
        cos = cosine(gram.inner(update, m_t), combined.update_sq_norm ** 0.5, max(gram.inner(m_t, m_t), 0.0) ** 0.5)
    combined.extra["cos_update_constraint"] = cos
    return combined


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

    def gram_rows(self, tasks) -> dict[str, torch.Tensor]:
        g_c = tasks.buffers[tasks.constraint]
        if self.ema is None:
            self.ema = torch.zeros_like(g_c)
        elif self.ema.device != g_c.device:  # restored from a checkpoint on the CPU
            self.ema = self.ema.to(g_c.device)
        return {EMA: self.ema}

    def clip(self) -> Optional[float]:
        return None if self.args["cos_clip"] is None else float(self.args["cos_clip"])

    def combine(self, tasks, space):
        # g_u: the whole objective's gradient
        return projected_update(self, tasks, space, {t: tasks.weights[t] for t in tasks.objective_tasks}, {})

    def state_dict(self):
        return {"ema": None if self.ema is None else self.ema.detach().cpu().clone()}

    def state_nbytes(self):
        return 0 if self.ema is None else self.ema.numel() * self.ema.element_size()

    def load_state_dict(self, state):
        self.ema = None if state.get("ema") is None else state["ema"].clone()
