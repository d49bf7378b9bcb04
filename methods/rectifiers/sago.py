"""SAGO (`_apply_sago`, `_apply_sago_prefer_retain`): per coordinate, c_i = [sign g_f,i · sign g_r,i < 0];
SAGO: g_i = α·g_r,i if c_i else γ·g_f,i; prefer-retain: g_i = α·g_r,i if c_i else γ·g_f,i + α·g_r,i.
Zeros count as agreement. Element-wise, so correct on shards.

One pass over the two buffers (GradSpace.foreach, chunks that stay in cache) applies the rule and
sums what the loop logs: the Gram matrix of (g_f, g_r) before the update, the conflict count and the
update's dot products. The rule is written with 0/1 float masks rather than a boolean `where`
(several times slower on CPU): a product with an exact 0 or 1 is exact, so on finite values the
update equals the boolean rule's (bit for bit for SAGO; prefer-retain's γ·g_f + α·g_r may round in
its last bit where the add is fused; the sign of a zero may differ)."""
from __future__ import annotations

from typing import Optional

import torch

from methods.gradspace import GradSpace, Gram, local_gram, stacked_view
from methods.rectifiers.base import Combined, Rectifier, TaskGradients
from methods.registry import RECTIFIERS


def agreement(f: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """−1.0 where sign(f)·sign(r) < 0, else 0.0 (zeros agree). Signs, not f·r, whose product of tiny
    values underflows to 0."""
    return torch.sign(f).mul_(torch.sign(r)).clamp_(max=0.0)


def sago_chunk(f: torch.Tensor, r: torch.Tensor, pair: Optional[torch.Tensor], gamma: float, alpha: float,
               prefer_retain: bool) -> torch.Tensor:
    """Rewrites the chunk f with the rule; returns [⟨f,f⟩, ⟨f,r⟩, ⟨r,f⟩, ⟨r,r⟩ (before), −conflicts,
    ⟨u,f⟩, ⟨u,r⟩, ⟨u,u⟩]. `pair`: f and r as one [2, n] view when they are rows of a block (one
    matrix product then gives their dot products). Few temporaries, so the chunk stays in cache."""
    before = (torch.mm(pair, pair.T) if pair is not None else local_gram([f, r])).reshape(4)
    minus_conflict = agreement(f, r)
    update = torch.add(minus_conflict, 1.0)  # 1 where the forget gradient is kept
    if gamma != 1.0:
        update.mul_(gamma)
    update.mul_(f)
    if prefer_retain:
        update.add_(r, alpha=alpha)
    else:
        update.addcmul_(r, minus_conflict, value=-alpha)
    with_update = torch.mv(pair, update) if pair is not None else torch.stack([torch.dot(f, update), torch.dot(r, update)])
    sums = torch.cat([before, minus_conflict.sum().reshape(1), with_update, torch.dot(update, update).reshape(1)])
    f.copy_(update)
    return sums


def sago_pass(g_f, g_r, gamma: float, alpha: float, space: GradSpace,
              prefer_retain: bool = False) -> tuple[Combined, list[float]]:
    """(the update written into g_f, the Gram matrix of (g_f, g_r) before it, flattened)."""
    pair = stacked_view([g_f, g_r])
    if pair is not None:
        sums = space.foreach(lambda p: sago_chunk(p[0], p[1], p, gamma, alpha, prefer_retain), pair, sums=8, temporaries=3)
    else:
        sums = space.foreach(lambda f, r: sago_chunk(f, r, None, gamma, alpha, prefer_retain), g_f, g_r, sums=8, temporaries=3)
    minus_count, dot_uf, dot_ur, sq_norm = sums.tolist()[4:]
    total = space.size(g_f)
    return Combined(g_f, intervened=-minus_count / max(total, 1), dot_update_forget=dot_uf, update_sq_norm=sq_norm,
                    dot_update_retain=dot_ur), sums.tolist()[:4]


def sago(g_f, g_r, gamma: float, alpha: float, space: GradSpace, prefer_retain: bool = False) -> Combined:
    return sago_pass(g_f, g_r, gamma, alpha, space, prefer_retain)[0]


@RECTIFIERS.register("sago")
class SAGO(Rectifier):
    """SAGO: per coordinate, where the forget and retain gradient signs conflict keep only the retain gradient."""

    prefer_retain = False
    fuses_gram = True

    def combine(self, tasks: TaskGradients, space):
        alone: Optional[str] = None
        if tasks.gram is None and tasks.rows() == [tasks.output_task, tasks.retain]:
            alone = tasks.output_task  # the single forget task: its Gram comes from the rule's own pass
        else:
            self.gram(tasks, space)
        _, g_f, gamma = tasks.forget_side()
        combined, before = sago_pass(g_f, tasks.buffers[tasks.retain], gamma, tasks.retain_weight, space,
                                     self.prefer_retain)
        if alone is not None:
            tasks.gram = Gram([alone, tasks.retain], torch.tensor(before, dtype=torch.float64).reshape(2, 2))
        if tasks.retain_side != tasks.retain:
            combined.dot_update_retain = None
        return combined


@RECTIFIERS.register("sago-prefer-retain")
class SAGOPreferRetain(SAGO):
    """SAGO's prefer-retain form: on conflict the retain gradient, elsewhere the sum of both."""

    prefer_retain = True
