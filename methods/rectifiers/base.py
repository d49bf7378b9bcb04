"""The rectifier interface: per-task gradients in, one update out, once per optimizer step.

Contract: a rectifier may overwrite the buffer of the forget side (the first objective task) with
the update; it must leave the retain-side and constraint buffers intact (the loop logs
cos(update, retain) from them afterwards).

Speed: `self.gram(tasks, space)` gives every inner product among the task gradients (and the
rows a rectifier adds with `gram_rows`, GRU's EMA) from one pass, shared with the loop's logged
geometry. A rule whose update is a linear combination of those rows returns `linear_update(...)`:
one pass writes the update and its norm and dot products come from the Gram matrix.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from methods.gradspace import GradSpace, Gram
from methods.registry import parse_args


@dataclass
class TaskGradients:
    """Reduced (all-reduced, accumulation-averaged) per-task gradients of one optimizer step."""
    buffers: dict[str, torch.Tensor]   # task → flat unweighted gradient
    weights: dict[str, float]          # objective task → weight (γ, α, ...)
    retain: Optional[str] = None       # task whose gradient is the retain side for two-task rules
    retain_weight: float = 1.0         # α used by two-task rules
    constraint: Optional[str] = None   # task holding ∇ retain-NLL (GRU's g_c)
    gram: Optional[Gram] = None        # inner products of `rows()` (+ rectifier rows), set once per step

    @property
    def retain_side(self) -> Optional[str]:
        """The task the loop logs cos(update, ·) against: the retain gradient, else GRU's constraint,
        else an objective task named 'retain'."""
        return self.retain or self.constraint or ("retain" if "retain" in self.weights else None)

    @property
    def output_task(self) -> str:
        """The buffer the update is written into: the first objective task on the forget side."""
        return next(t for t in self.objective_tasks if t != self.retain)

    def rows(self) -> list[str]:
        """The tasks a rectifier reads, in buffer order (probe buffers of analyzers excluded)."""
        wanted = set(self.weights) | {t for t in (self.retain, self.constraint) if t is not None}
        return [t for t in self.buffers if t in wanted]

    @property
    def objective_tasks(self) -> list[str]:
        return list(self.weights)

    def forget_side(self) -> tuple[str, torch.Tensor, float]:
        """(task, g_f, γ): the single non-retain objective task, or their weighted sum with γ = 1."""
        others = [t for t in self.objective_tasks if t != self.retain]
        if len(others) == 1:
            return others[0], self.buffers[others[0]], self.weights[others[0]]
        first, *rest = others
        out = self.buffers[first].mul_(self.weights[first])
        for task in rest:
            out.add_(self.buffers[task], alpha=self.weights[task])
        return first, out, 1.0


@dataclass
class Combined:
    update: torch.Tensor
    intervened: Optional[float] = None      # 1/0, or the fraction of tensors / coordinates changed
    dot_update_forget: Optional[float] = None  # ⟨update, g_f⟩, computed before g_f was overwritten
    extra: dict = field(default_factory=dict)
    # known without another pass over the update (else the loop measures them on it)
    update_sq_norm: Optional[float] = None     # ‖update‖²
    dot_update_retain: Optional[float] = None  # ⟨update, g_retain⟩ (TaskGradients.retain)


def write_combination(space: GradSpace, out: torch.Tensor, terms: list[tuple[float, torch.Tensor]]) -> None:
    """out ← Σ c·v over `terms` in one pass (out may be one of the v)."""
    own = sum(c for c, v in terms if v is out)
    others = [(c, v) for c, v in terms if v is not out]
    if len(others) == 1 and others[0][0] == 1.0 and own not in (0.0, 1.0):  # BLUR at α = 1: out ← v + own·out
        space.foreach(lambda target, v: torch.add(v, target, alpha=own, out=target), out, others[0][1])
        return

    def step(target, *chunks):
        if own == 0.0:
            target.zero_()
        elif own != 1.0:
            target.mul_(own)
        for (c, _), chunk in zip(others, chunks):
            if c != 0.0:
                target.add_(chunk, alpha=c)
    space.foreach(step, out, *[v for _, v in others])


def linear_update(tasks: TaskGradients, gram: Gram, space: GradSpace, coefficients: dict[str, float],
                  intervened: Optional[float], extra: Optional[dict] = None, write=None) -> Combined:
    """update = Σ coefficients[task]·g_task, written into the first objective task's buffer in one
    pass (or by `write()`, for a rule that updates its own state in the same pass); ‖update‖² and its
    dot products with g_f and the retain side come from the Gram matrix (whose rows the coefficients
    name), so the buffers are not read again."""
    forget = tasks.objective_tasks[0]
    out = tasks.buffers[tasks.output_task]
    if write is None:
        write_combination(space, out, [(c, tasks.buffers[name]) for name, c in coefficients.items()])
    else:
        write()
    sq_norm = gram.sq_norm(coefficients)
    retain = tasks.retain_side
    return Combined(out, intervened=intervened, dot_update_forget=gram.inner(coefficients, {forget: 1.0}),
                    extra=extra or {}, update_sq_norm=sq_norm,
                    dot_update_retain=None if sq_norm is None or retain is None else gram.inner(coefficients, {retain: 1.0}))


def forget_side_coefficients(tasks: TaskGradients) -> tuple[dict[str, float], float]:
    """(g_f as coefficients over the tasks, γ): the single non-retain objective task with its weight,
    or the weighted sum of several with γ = 1 (as `forget_side`, without writing it)."""
    others = [t for t in tasks.objective_tasks if t != tasks.retain]
    if len(others) == 1:
        return {others[0]: 1.0}, tasks.weights[others[0]]
    return {t: tasks.weights[t] for t in others}, 1.0


def two_task_update(rule, tasks: TaskGradients, gram: Gram, space: GradSpace) -> Combined:
    """A global two-task rule g = a·g_f + b·g_r with (a, b, intervened) = rule(‖g_f‖², ⟨g_f,g_r⟩, ‖g_r‖², γ, α)."""
    forget, gamma = forget_side_coefficients(tasks)
    retain = {tasks.retain: 1.0}
    a, b, intervened = rule(gram.inner(forget, forget), gram.inner(forget, retain), gram.inner(retain, retain),
                            gamma, tasks.retain_weight)
    coefficients = {t: a * c for t, c in forget.items()}
    coefficients[tasks.retain] = coefficients.get(tasks.retain, 0.0) + b
    return linear_update(tasks, gram, space, coefficients, float(intervened))


def on_two_buffers(rule, g_f: torch.Tensor, g_r: torch.Tensor, gamma: float, alpha: float,
                   space: GradSpace) -> Combined:
    """`two_task_update(rule, ...)` on a bare (g_f, g_r) pair: the update is written into g_f."""
    tasks = TaskGradients({"forget": g_f, "retain": g_r}, {"forget": gamma}, retain="retain", retain_weight=alpha)
    return two_task_update(rule, tasks, task_gram(tasks, space, {}, False), space)


def task_gram(tasks: TaskGradients, space: GradSpace, extra: dict[str, torch.Tensor], per_segment: bool) -> Gram:
    """The Gram matrix of the tasks' rows and `extra` (cached on `tasks`: one pass per step)."""
    if tasks.gram is None:
        rows = {t: tasks.buffers[t] for t in tasks.rows()}
        rows.update(extra)
        matrix = space.gram(list(rows.values()), per_segment=per_segment)
        tasks.gram = Gram(list(rows), matrix.sum(0) if per_segment else matrix, matrix if per_segment else None)
    return tasks.gram


class Rectifier:
    name: str = "?"
    defaults: dict = {}
    separate_gradients = True  # False: the loop accumulates every w_k ∇L_k into one buffer
    needs_retain = True        # needs a retain-side gradient (objective retain task or retain NLL)
    needs_retain_nll = False   # needs ∇ retain-NLL specifically (GRU's constraint)
    state_copies = 0           # gradient-sized tensors kept across steps (GRU's EMA: 1), for memory plans
    per_segment_gram = False   # the rule needs the Gram matrix of every parameter tensor (PCGrad per tensor)
    fuses_gram = False         # combine sets tasks.gram itself, in its own pass over the unmodified buffers

    def __init__(self, **args):
        # every rectifier takes retain_weight: α for the retain-NLL task added when the objective has none
        self.args = parse_args(f"rectifier {self.name!r}", args, {"retain_weight": 1.0, **self.defaults})

    def combine(self, tasks: TaskGradients, space: GradSpace) -> Combined:
        raise NotImplementedError

    def gram_rows(self, tasks: TaskGradients) -> dict[str, torch.Tensor]:
        """Gradient-sized vectors besides the task buffers whose inner products the rule needs (GRU's EMA)."""
        return {}

    def gram(self, tasks: TaskGradients, space: GradSpace) -> Gram:
        """Inner products among the task gradients and `gram_rows`, from one pass; computed once per
        step (the loop asks first, for the logged norms and cosines, and the rule reuses it)."""
        return task_gram(tasks, space, self.gram_rows(tasks) if tasks.gram is None else {}, self.per_segment_gram)

    def state_dict(self) -> dict:
        """Cross-step state for checkpoints (host copies)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def state_nbytes(self) -> int:
        """Bytes of cross-step state held on the device, counted without copying it (GRU's EMA is one
        value per trainable parameter: copying it to the host just to count it would cost ~29 GB at 7B)."""
        return 0
