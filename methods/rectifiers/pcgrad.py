"""Asymmetric PCGrad (SAGO `_apply_pcgrad` / `_apply_pcgrad_global`): project g_f off g_r when they
conflict, keep g_r: g = γ·g̃_f + α·g_r, g̃_f = g_f − ⟨g_f,g_r⟩/(‖g_r‖² + 1e-10)·g_r if ⟨g_f,g_r⟩ < 0.
Granularity 'tensor' (per parameter tensor, "module-wise") or 'global' (one dot product)."""
from __future__ import annotations

from methods.gradspace import GradSpace
from methods.rectifiers.base import Combined, Rectifier
from methods.registry import RECTIFIERS

EPS = 1e-10


def pcgrad_global(g_f, g_r, gamma: float, alpha: float, space: GradSpace) -> Combined:
    d, rr, ff = space.dot(g_f, g_r), space.dot(g_r, g_r), space.dot(g_f, g_f)
    c = d / (rr + EPS) if d < 0 else 0.0
    retain_coef = alpha - gamma * c  # g = γ·g_f + (α − γc)·g_r
    update = g_f.mul_(gamma).add_(g_r, alpha=retain_coef)
    return Combined(update, intervened=float(d < 0), dot_update_forget=gamma * ff + retain_coef * d)


def pcgrad_tensor(g_f, g_r, gamma: float, alpha: float, space: GradSpace) -> Combined:
    d = space.segment_dots(g_f, g_r)
    rr = space.segment_dots(g_r, g_r)
    ff = space.segment_dots(g_f, g_f)
    c = (d / (rr + EPS)).where(d < 0, 0.0)
    retain_coef = alpha - gamma * c
    for coef, f, r in zip(retain_coef.tolist(), space.views(g_f), space.views(g_r)):
        f.mul_(gamma).add_(r, alpha=coef)
    n_conflict = float((d < 0).sum())
    return Combined(g_f, intervened=n_conflict / max(len(space.segments), 1),
                    dot_update_forget=float((gamma * ff + retain_coef * d).sum()))


@RECTIFIERS.register("pcgrad")
class PCGrad(Rectifier):
    defaults = {"granularity": "tensor"}

    def __init__(self, **args):
        super().__init__(**args)
        if self.args["granularity"] not in ("tensor", "global"):
            raise ValueError(f"pcgrad granularity must be 'tensor' or 'global', got {self.args['granularity']!r}")

    def combine(self, tasks, space):
        _, g_f, gamma = tasks.forget_side()
        rule = pcgrad_tensor if self.args["granularity"] == "tensor" else pcgrad_global
        return rule(g_f, tasks.buffers[tasks.retain], gamma, tasks.retain_weight, space)


@RECTIFIERS.register("pcgrad-global")
class PCGradGlobal(PCGrad):
    """`pcgrad` with one global dot product, under its own name so its results get their own folder
    (rectifier arguments are not part of the result path)."""

    defaults = {"granularity": "global"}

    def __init__(self, **args):
        super().__init__(**args)
        if self.args["granularity"] != "global":
            raise ValueError("pcgrad-global is global by definition; use `pcgrad` for granularity 'tensor'")
