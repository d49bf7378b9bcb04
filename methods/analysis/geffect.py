"""G-effect (arXiv 2502.19301): how one step along the objective changes the forget and retain risks.

e_u = ⟨∇L, ∇R_f⟩ and e_r = ⟨∇L, ∇R_r⟩ with R = mean token NLL (HF loss) on the step's forget /
retain batches and L = Σ_k w_k·L_k the objective's weighted task sum (before any rectifier). Since
R(θ − η∇L) − R(θ) ≈ −η·e: e_u < 0 means forget risk rises (wanted), e_r < 0 means retain risk
rises (harm). Split per parameter group: embed, block<i> (GRUN edits count to their block), lm_head,
other; the groups sum to the total.

Values are exact gradients of the optimizer step's batch (accumulation window, all-reduced), taken
every `every` steps at the parameters before the update, with fp32 dot products accumulated in
float64. The official code instead replays checkpoints and EMA-smooths gradients across micro-
batches (v ← 0.6·v + 0.4·g); nothing here is smoothed. Rows go to `geffect.jsonl` in the run folder.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import torch

from common import atomic
from methods import tokens
from methods.analysis.base import Analyzer
from methods.registry import ANALYZERS

FORGET_RISK, RETAIN_RISK = "risk_forget", "risk_retain"
BLOCK = re.compile(r"(?:layers|interventions)\.(\d+)\.")
FILE = "geffect.jsonl"


def group_of(name: str) -> str:
    match = BLOCK.search(name)
    if match:
        return f"block{int(match.group(1))}"
    if "embed" in name or "wte" in name:
        return "embed"
    if "lm_head" in name:
        return "lm_head"
    return "other"


def group_dots(a: torch.Tensor, b: torch.Tensor, layout: dict[str, slice]) -> dict[str, float]:
    """Local (this rank's) ⟨a, b⟩ restricted to each parameter group (fp32 dots, float64 sums on the
    buffers' device, ready for the collective)."""
    sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), dtype=torch.float64, device=a.device))
    for name, part in layout.items():
        sums[group_of(name)] += torch.dot(a[part], b[part]).double()
    return sums


def block_order(group: str) -> tuple:
    order = {"embed": (0, 0), "lm_head": (2, 0), "other": (3, 0)}
    return order.get(group, (1, int(group[5:])) if group.startswith("block") else (4, 0))


@ANALYZERS.register("geffect")
class GEffect(Analyzer):
    defaults = {"every": 1}
    probe_tasks = (FORGET_RISK, RETAIN_RISK)
    probe_streams = ("forget", "retain")

    def __init__(self, **args):
        super().__init__(**args)
        if int(self.args["every"]) < 1:
            raise ValueError(f"geffect every must be >= 1 optimizer steps, got {self.args['every']}")
        self.weights: dict[str, float] = {}
        self.rows: list[dict] = []

    def active(self, step: int) -> bool:
        return (step - 1) % int(self.args["every"]) == 0  # steps 1, 1+K, 1+2K, ...

    def start(self, weights, out_dir):
        self.weights = dict(weights)

    def probe_losses(self, step, model, batches):
        if not self.active(step):
            return {}
        forget, retain = batches["forget"], batches["retain"]
        return {FORGET_RISK: tokens.mean_nll(tokens.logits_of(model, forget), forget["labels"]),
                RETAIN_RISK: tokens.mean_nll(tokens.logits_of(model, retain), retain["labels"])}

    def observe(self, step, tasks, layout, space):
        if not self.active(step):
            return {}
        if not self.weights:
            raise RuntimeError("geffect.start() was not called with the objective's task weights")
        objective = torch.zeros_like(tasks[FORGET_RISK])
        for task, weight in self.weights.items():
            objective.add_(tasks[task], alpha=weight)
        row = {"step": step, "exact": True, "smoothing": "none", "weights": self.weights}
        for key, risk in (("e_u", FORGET_RISK), ("e_r", RETAIN_RISK)):
            local = group_dots(objective, tasks[risk], layout)
            groups = sorted({group_of(name) for name in layout}, key=block_order)  # same on every rank
            reduced = space._global(torch.stack([local[g] for g in groups])).tolist()  # sum over shards
            row[key] = dict(zip(groups, reduced))
            row[f"{key}_total"] = sum(reduced)
            row[f"{key}_tasks"] = {task: space.dot(tasks[task], tasks[risk]) for task in self.weights}
        row["grad_norm_risk_forget"] = space.norm(tasks[FORGET_RISK])
        row["grad_norm_risk_retain"] = space.norm(tasks[RETAIN_RISK])
        self.rows.append(row)
        return {"geffect_u": row["e_u_total"], "geffect_r": row["e_r_total"]}

    def summary(self):
        return {"geffect": self.rows}

    def finish(self, out_dir):
        atomic.write_jsonl(Path(out_dir) / FILE, self.rows)
