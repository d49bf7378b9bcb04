"""Per-group task-gradient geometry: cos(forget, retain) within each parameter group per step.

Groups are the transformer block index (`layers.<i>.`) and `other` (embeddings, norm, head).
"""
from __future__ import annotations

import re
from collections import defaultdict

import torch

from methods.analysis.base import Analyzer
from methods.registry import ANALYZERS

BLOCK = re.compile(r"layers\.(\d+)\.")


def group_of(name: str) -> str:
    match = BLOCK.search(name)
    return f"block{int(match.group(1))}" if match else "other"


@ANALYZERS.register("geometry")
class Geometry(Analyzer):
    def __init__(self, **args):
        super().__init__(**args)
        self.history: list[dict] = []

    def observe(self, step, tasks, layout, space):
        if "forget" not in tasks or "retain" not in tasks:
            return {}
        f, r = tasks["forget"], tasks["retain"]
        sums = defaultdict(lambda: torch.zeros(3, dtype=torch.float64, device=f.device))  # stays on device for NCCL
        for name, part in layout.items():
            fs, rs = f[part], r[part]
            sums[group_of(name)] += torch.stack([torch.dot(fs, rs), torch.dot(fs, fs), torch.dot(rs, rs)]).double()
        groups = sorted(sums)  # the same on every rank: one collective for all groups
        reduced = space._global(torch.stack([sums[g] for g in groups])).tolist() if groups else []
        cosines = {}
        for group, (fr, ff, rr) in zip(groups, reduced):
            cosines[group] = fr / (ff * rr) ** 0.5 if ff > 0 and rr > 0 else None
        self.history.append({"step": step, "cos_forget_retain": cosines})
        return {"group_cos_forget_retain": cosines}

    def summary(self):
        return {"geometry": self.history}
