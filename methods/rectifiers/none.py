"""Sum: g = Σ_k w_k g_k. The loop does this by back-propagating each w_k L_k into one buffer; `combine`
is used only when an analyzer asked for separate task buffers."""
from __future__ import annotations

from methods.rectifiers.base import Rectifier, linear_update
from methods.registry import RECTIFIERS


@RECTIFIERS.register("none")
class Sum(Rectifier):
    separate_gradients = False
    needs_retain = False

    def combine(self, tasks, space):
        coefficients = {t: tasks.weights[t] for t in tasks.objective_tasks}
        return linear_update(tasks, self.gram(tasks, space), space, coefficients, intervened=0.0)
