"""Sum: g = Σ_k w_k g_k. The loop does this by back-propagating each w_k L_k into one buffer; `combine`
is used only when an analyzer asked for separate task buffers."""
from __future__ import annotations

from methods.rectifiers.base import Combined, Rectifier
from methods.registry import RECTIFIERS


@RECTIFIERS.register("none")
class Sum(Rectifier):
    separate_gradients = False
    needs_retain = False

    def combine(self, tasks, space):
        forget = tasks.objective_tasks[0]
        dots = {t: space.dot(tasks.buffers[t], tasks.buffers[forget]) for t in tasks.objective_tasks}
        update = tasks.objective_sum()
        return Combined(update, intervened=0.0,
                        dot_update_forget=sum(tasks.weights[t] * d for t, d in dots.items()))
