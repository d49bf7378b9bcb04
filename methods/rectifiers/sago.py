"""SAGO (`_apply_sago`, `_apply_sago_prefer_retain`): per coordinate, c_i = [sign g_f,i · sign g_r,i < 0];
SAGO: g_i = α·g_r,i if c_i else γ·g_f,i; prefer-retain: g_i = α·g_r,i if c_i else γ·g_f,i + α·g_r,i.
Zeros count as agreement. Element-wise, so correct on shards; done tensor by tensor to keep the
temporaries as small as the largest parameter."""
from __future__ import annotations

import torch

from methods.gradspace import GradSpace
from methods.rectifiers.base import Combined, Rectifier
from methods.registry import RECTIFIERS


def sago(g_f, g_r, gamma: float, alpha: float, space: GradSpace, prefer_retain: bool = False) -> Combined:
    conflicts = torch.zeros((), dtype=torch.float64, device=g_f.device)
    dot_uf = torch.zeros((), dtype=torch.float64, device=g_f.device)
    for f, r in zip(space.views(g_f), space.views(g_r)):
        conflict = (torch.sign(f) * torch.sign(r)) < 0
        conflicts += conflict.sum()
        kept = f * gamma + r * alpha if prefer_retain else f * gamma
        new = torch.where(conflict, r * alpha, kept)
        dot_uf += torch.dot(new, f).double()
        f.copy_(new)
    total = space.size(g_f)
    return Combined(g_f, intervened=space.sum(conflicts) / max(total, 1), dot_update_forget=space.sum(dot_uf))


@RECTIFIERS.register("sago")
class SAGO(Rectifier):
    """SAGO: per coordinate, where the forget and retain gradient signs conflict keep only the retain gradient."""

    prefer_retain = False

    def combine(self, tasks, space):
        _, g_f, gamma = tasks.forget_side()
        return sago(g_f, tasks.buffers[tasks.retain], gamma, tasks.retain_weight, space, self.prefer_retain)


@RECTIFIERS.register("sago-prefer-retain")
class SAGOPreferRetain(SAGO):
    """SAGO's prefer-retain form: on conflict the retain gradient, elsewhere the sum of both."""

    prefer_retain = True
