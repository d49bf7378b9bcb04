"""Per-task flat fp32 gradient buffers with per-parameter views, the rows of one [tasks, n] block.

Backward writes straight into a buffer: for fp32 parameters `param.grad` is pointed at the
buffer's view before the backward, so autograd accumulates in place and nothing is copied.
Other dtypes (bf16 models) backward into a normal `.grad`, which is then added into the buffer.

Sharded (FSDP2) parameters are DTensors: a buffer then holds this rank's local shards only.
FSDP reduce-scatters (and averages over ranks) each backward's gradient and adds it into an
existing sharded `param.grad` in place, so `param.grad` is pointed at a DTensor over the buffer's
view before the backward, as in the unsharded case.

Memory: with fp32 (master) parameters no gradient exists outside the buffers, and the update is
handed to the optimizer as views of the buffer the rectifier wrote it into, so `none` holds one
gradient copy (its fused buffer) and a k-buffer rectifier k copies.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.distributed.tensor import DTensor


def local(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's part of a parameter or gradient: the local shard of a DTensor, else itself."""
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


class TaskBuffers:
    def __init__(self, params: list[tuple[str, nn.Parameter]], tasks: list[str], device):
        self.names = [name for name, _ in params]
        self.params = [param for _, param in params]
        kinds = {isinstance(p, DTensor) for p in self.params}
        if len(kinds) > 1:
            raise ValueError("some trainable parameters are sharded (DTensor) and some are not; shard the "
                             "whole model with fully_shard (root last) so every trainable parameter is a DTensor")
        self.sharded = kinds == {True}
        self.shapes = [local(p).shape for p in self.params]
        self.segments: list[tuple[int, int]] = []
        offset = 0
        for shape in self.shapes:
            numel = shape.numel()
            self.segments.append((offset, numel))
            offset += numel
        self.numel = offset
        # the buffers are the rows of one block, so the inner products among them are one matrix
        # product per chunk (GradSpace.gram) and zeroing them is one call
        self.block = torch.zeros((len(tasks), self.numel), dtype=torch.float32, device=device)
        self.buffers = dict(zip(tasks, self.block.unbind(0)))

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        return [flat[o:o + n].view(shape) for (o, n), shape in zip(self.segments, self.shapes)]

    def zero(self) -> None:
        self.block.zero_()

    def backward(self, task: str, loss: torch.Tensor, retain_graph: bool = False) -> None:
        """Accumulate ∇loss into buffer `task`."""
        if self.sharded:
            self._sharded_backward(task, loss, retain_graph)
            return
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

    def _sharded_backward(self, task: str, loss: torch.Tensor, retain_graph: bool) -> None:
        # FSDP2 adds each reduce-scattered shard into an existing sharded grad in place, so point every
        # `param.grad` at a DTensor over the buffer's view: no transient full set of sharded grads
        for param, view in zip(self.params, self.views(self.buffers[task])):
            param.grad = self._as_dtensor(view, param) if param.dtype == view.dtype else None
        loss.backward(retain_graph=retain_graph)
        for param, view in zip(self.params, self.views(self.buffers[task])):
            if param.grad is not None and local(param.grad).data_ptr() != view.data_ptr():
                view.add_(local(param.grad).float())  # non-fp32 parameter: FSDP made its own grad
            param.grad = None

    @staticmethod
    def _as_dtensor(view: torch.Tensor, param) -> DTensor:
        return DTensor.from_local(view, param.device_mesh, param.placements, run_check=False,
                                  shape=param.shape, stride=param.stride())

    def set_param_grads(self, flat: torch.Tensor) -> None:
        """Hand the combined update to the optimizer through `param.grad`."""
        for param, view in zip(self.params, self.views(flat)):
            grad = view if param.dtype == torch.float32 else view.to(param.dtype)
            if self.sharded:
                grad = self._as_dtensor(grad, param)
            param.grad = grad

    def nbytes(self) -> int:
        return self.block.numel() * self.block.element_size()
