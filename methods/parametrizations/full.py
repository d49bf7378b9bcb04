"""Full fine-tuning: every parameter trains; the reference is a frozen deep copy of the start model."""
from __future__ import annotations

import copy

import torch

from methods import tokens
from methods.parametrizations.base import Parametrization
from methods.registry import PARAMETRIZATIONS


@PARAMETRIZATIONS.register("full")
class Full(Parametrization):
    copies_reference = True
    trains_every_weight = True

    def prepare(self, model, needs_reference):
        self.reference = None
        if needs_reference:
            self.reference = copy.deepcopy(model).eval()
            self.reference.requires_grad_(False)
        model.requires_grad_(True)
        return model

    @torch.no_grad()
    def reference_logits(self, model, batch):
        if self.reference is None:
            raise RuntimeError("full parametrization was prepared without a reference model")
        return tokens.logits_of(self.reference, batch)
