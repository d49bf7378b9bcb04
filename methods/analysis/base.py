"""The analyzer interface: observe the reduced per-task gradients at each optimizer boundary.

The loop calls `observe` before the rectifier touches the buffers; buffers are read-only to
analyzers. `layout` maps each trainable parameter name to its slice of the flat buffers.
`summary()` is stored by the caller (e.g. in metric_details); `log_row` fields go into the
step's train_log.jsonl line.
"""
from __future__ import annotations

import torch

from methods.registry import parse_args


class Analyzer:
    name: str = "?"
    defaults: dict = {}
    needs_separate_gradients = True  # forces per-task buffers even for the `none` rectifier

    def __init__(self, **args):
        self.args = parse_args(f"analyzer {self.name!r}", args, self.defaults)

    def observe(self, step: int, tasks: dict[str, torch.Tensor], layout: dict[str, slice],
                space) -> dict:
        """Return fields to add to this step's log line (may be empty)."""
        raise NotImplementedError

    def summary(self) -> dict:
        return {}
