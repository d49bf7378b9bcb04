"""Per-task flat fp32 gradient buffers with per-parameter views.

Backward writes straight into a buffer: for fp32 parameters `param.grad` is pointed at the
buffer's view before the backward, so autograd accumulates in place and nothing is copied.
Other dtypes (bf16 models) backward into a normal `.grad`, which is then added into the buffer.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class TaskBuffers:
    def __init__(self, params: list[tuple[str, nn.Parameter]], tasks: list[str], device):
        self.names = [name for name, _ in params]
        self.params = [param for _, param in params]
        self.segments: list[tuple[int, int]] = []
        offset = 0
        for param in self.params:
            self.segments.append((offset, param.numel()))
            offset += param.numel()
        self.numel = offset
        self.buffers = {task: torch.zeros(self.numel, dtype=torch.float32, device=device) for task in tasks}

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        return [flat[o:o + n].view(p.shape) for (o, n), p in zip(self.segments, self.params)]

    def zero(self) -> None:
        for flat in self.buffers.values():
            flat.zero_()

    def backward(self, task: str, loss: torch.Tensor, retain_graph: bool = False) -> None:
        """Accumulate ∇loss into buffer `task`."""
        targets = self.views(self.buffers[task])
        for param, view in zip(self.params, targets):
            param.grad = view if param.dtype == torch.float32 else None
        loss.backward(retain_graph=retain_graph)
        for param, view in zip(self.params, targets):
            if param.grad is not None and param.grad.data_ptr() != view.data_ptr():
                # autograd made a new tensor (non-fp32 parameter, or it could not add in place)
                if param.dtype == torch.float32:
                    view.copy_(param.grad)
                else:
                    view.add_(param.grad.float())
            param.grad = None

    def set_param_grads(self, flat: torch.Tensor) -> None:
        """Hand the combined update to the optimizer through `param.grad`."""
        for param, view in zip(self.params, self.views(flat)):
            param.grad = view if param.dtype == torch.float32 else view.to(param.dtype)

    def nbytes(self) -> int:
        return sum(flat.numel() * flat.element_size() for flat in self.buffers.values())
