"""The analyzer interface: observe the reduced per-task gradients at each optimizer boundary.

The loop calls `observe` before the rectifier touches the buffers; buffers are read-only to
analyzers. `layout` maps each trainable parameter name to its slice of the flat buffers.
`summary()` is stored by the caller (e.g. in metric_details); `log_row` fields go into the
step's train_log.jsonl line.

Probe tasks: an analyzer may need gradients of losses that are not part of the objective (G-effect:
the forget and retain risks). It names them in `probe_tasks`; the loop allocates one buffer each,
back-propagates `probe_losses(...)` per micro-batch (same batches, same averaging and all-reduce as
the task buffers) and passes them to `observe` with the task buffers. They never reach the update.
"""
from __future__ import annotations

import torch

from methods.registry import parse_args


class Analyzer:
    name: str = "?"
    defaults: dict = {}
    needs_separate_gradients = True  # forces per-task buffers even for the `none` rectifier
    probe_tasks: tuple[str, ...] = ()    # extra gradient buffers this analyzer reads
    probe_streams: tuple[str, ...] = ()  # streams its probe losses read

    def __init__(self, **args):
        self.args = parse_args(f"analyzer {self.name!r}", args, self.defaults)

    def start(self, weights: dict[str, float], out_dir) -> None:
        """Called once before training with the objective's task weights and the run folder."""

    def probe_losses(self, step: int, model, batches: dict) -> dict[str, torch.Tensor]:
        """Losses (keys ⊆ probe_tasks) to back-propagate into the probe buffers at this optimizer step."""
        return {}

    def observe(self, step: int, tasks: dict[str, torch.Tensor], layout: dict[str, slice],
                space) -> dict:
        """Return fields to add to this step's log line (may be empty)."""
        raise NotImplementedError

    def summary(self) -> dict:
        return {}

    def finish(self, out_dir) -> None:
        """Called once on the main process when training ends (ok or diverged): write files."""
