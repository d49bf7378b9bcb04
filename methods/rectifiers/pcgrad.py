"""Asymmetric PCGrad (SAGO `_apply_pcgrad` / `_apply_pcgrad_global`): project g_f off g_r when they
conflict, keep g_r: g = γ·g̃_f + α·g_r, g̃_f = g_f − ⟨g_f,g_r⟩/(‖g_r‖² + 1e-10)·g_r if ⟨g_f,g_r⟩ < 0.
Granularity 'tensor' (per parameter tensor, "module-wise") or 'global' (one dot product).
Both read the buffers twice: once for their inner products (per tensor: one Gram matrix per
parameter tensor), once to write the update."""
from __future__ import annotations

import torch

from methods.gradspace import GradSpace
from methods.rectifiers.base import (Combined, Rectifier, TaskGradients, forget_side_coefficients, on_two_buffers,
                                     task_gram, two_task_update)
from methods.registry import RECTIFIERS

EPS = 1e-10


def global_coefficients(ff: float, fr: float, rr: float, gamma: float, alpha: float) -> tuple[float, float, bool]:
    """(a, b, intervened) with g = a·g_f + b·g_r: g = γ·g_f + (α − γc)·g_r."""
    c = fr / (rr + EPS) if fr < 0 else 0.0
    return gamma, alpha - gamma * c, fr < 0


def pcgrad_global(g_f, g_r, gamma: float, alpha: float, space: GradSpace) -> Combined:
    return on_two_buffers(global_coefficients, g_f, g_r, gamma, alpha, space)


def tensor_update(tasks: TaskGradients, gram, space: GradSpace) -> Combined:
    """Per parameter tensor s: g_s = γ·g_f,s + (α − γ·c_s)·g_r,s, from the per-tensor Gram matrices."""
    forget, gamma = forget_side_coefficients(tasks)
    grams = gram.segments  # [tensors, k, k]
    device, k = grams.device, len(gram.names)
    x = torch.zeros(k, dtype=torch.float64, device=device)  # g_f over the Gram's rows
    for task, c in forget.items():
        x[gram.index[task]] = c
    retain = gram.index[tasks.retain]
    d = grams[:, :, retain] @ x
    rr = grams[:, retain, retain]
    c = (d / (rr + EPS)).where(d < 0, 0.0)
    weights = gamma * x.expand(len(grams), k).clone()   # [tensors, k]: the update over the rows, per tensor
    weights[:, retain] += tasks.retain_weight - gamma * c
    dots = torch.einsum("si,sij->sj", weights, grams)   # ⟨g_s, row_j,s⟩
    sq_norm = float((dots * weights).sum())
    scale = float(((weights.abs() * grams.diagonal(dim1=1, dim2=2).clamp(min=0).sqrt()).sum(1) ** 2).sum())
    out_task = tasks.output_task
    names = [n for n in gram.names if n != out_task and n in tasks.buffers]
    table = weights.tolist()
    own, columns = gram.index[out_task], [gram.index[n] for n in names]

    def step(segment, out, *others):
        row = table[segment]
        if row[own] != 1.0:
            out.mul_(row[own])
        for column, chunk in zip(columns, others):
            if row[column] != 0.0:
                out.add_(chunk, alpha=row[column])
    space.foreach(step, tasks.buffers[out_task], *[tasks.buffers[n] for n in names], by_segment=True)
    totals = dots.sum(0).tolist()
    exact = sq_norm >= 1e-6 * scale
    side = tasks.retain_side
    return Combined(tasks.buffers[out_task], intervened=float((d < 0).sum()) / max(len(space.segments), 1),
                    dot_update_forget=totals[gram.index[tasks.objective_tasks[0]]],
                    update_sq_norm=sq_norm if exact else None,
                    dot_update_retain=totals[gram.index[side]] if exact and side in gram.index else None)


def pcgrad_tensor(g_f, g_r, gamma: float, alpha: float, space: GradSpace) -> Combined:
    tasks = TaskGradients({"forget": g_f, "retain": g_r}, {"forget": gamma}, retain="retain", retain_weight=alpha)
    return tensor_update(tasks, task_gram(tasks, space, {}, True), space)


@RECTIFIERS.register("pcgrad")
class PCGrad(Rectifier):
    defaults = {"granularity": "tensor"}

    def __init__(self, **args):
        super().__init__(**args)
        if self.args["granularity"] not in ("tensor", "global"):
            raise ValueError(f"pcgrad granularity must be 'tensor' or 'global', got {self.args['granularity']!r}")
        self.per_segment_gram = self.args["granularity"] == "tensor"

    def combine(self, tasks, space):
        gram = self.gram(tasks, space)
        if self.per_segment_gram:
            return tensor_update(tasks, gram, space)
        return two_task_update(global_coefficients, tasks, gram, space)


@RECTIFIERS.register("pcgrad-global")
class PCGradGlobal(PCGrad):
    """`pcgrad` with one global dot product, under its own name so its results get their own folder
    (rectifier arguments are not part of the result path)."""

    defaults = {"granularity": "global"}

    def __init__(self, **args):
        super().__init__(**args)
        if self.args["granularity"] != "global":
            raise ValueError("pcgrad-global is global by definition; use `pcgrad` for granularity 'tensor'")
