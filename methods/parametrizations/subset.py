"""A named subset of the parameters trains (RMU's layers 5–7 `mlp.down_proj`); the rest is frozen.

`params` are fnmatch patterns over parameter names, e.g. ["model.layers.[5-7].mlp.down_proj.weight"]
for the WMDP-RMU recipe. The reference is a frozen deep copy, as in `full`.
"""
from __future__ import annotations

import fnmatch

from methods.parametrizations.full import Full
from methods.registry import PARAMETRIZATIONS

RMU_PARAMS = ["model.layers.[5-7].mlp.down_proj.weight"]  # official: param index 6 of layers 5, 6, 7


@PARAMETRIZATIONS.register("subset")
class Subset(Full):
    defaults = {"params": RMU_PARAMS}
    trains_every_weight = False  # only the named parameters train (set here: the plan reads source)

    def prepare(self, model, needs_reference):
        model = super().prepare(model, needs_reference)
        patterns = list(self.args["params"])
        chosen = 0
        for name, p in model.named_parameters():
            keep = any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
            p.requires_grad_(keep)
            chosen += keep
        if not chosen:
            examples = [name for name, _ in model.named_parameters()][:6]
            raise ValueError(f"subset params {patterns} match no parameter of {type(model).__name__}; "
                             f"names look like {examples}")
        return model
