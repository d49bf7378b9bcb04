"""The gradient space: flat fp32 buffers with *global* reductions.

A flat buffer holds one value per trainable coordinate this rank stores; `segments` gives each
parameter's (offset, numel) inside it. Under DDP every rank holds the full, already all-reduced
buffer, so local sums are global. Under sharding (FSDP2 DTensor gradients) a rank holds only its
shard, so partial sums are all-reduced over `shard_group` — the step SAGO's official code misses.
Every partial sum stays on the buffers' device: NCCL accepts only device tensors, so nothing here
(or in an analyzer) may build a host tensor for a collective.
Hand-written because no library exposes global dot products over a sharded gradient set.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist


@dataclass
class GradSpace:
    segments: list[tuple[int, int]]
    shard_group: Optional[object] = None  # a process group when buffers hold shards, else None

    def _global(self, partial: torch.Tensor) -> torch.Tensor:
        if self.shard_group is not None:
            dist.all_reduce(partial, op=dist.ReduceOp.SUM, group=self.shard_group)
        return partial

    def dot(self, a: torch.Tensor, b: torch.Tensor) -> float:
        return float(self._global(torch.dot(a, b).double().reshape(1))[0])

    def norm(self, a: torch.Tensor) -> float:
        return self.dot(a, a) ** 0.5

    def sum(self, values: torch.Tensor) -> float:
        return float(self._global(values.sum().double().reshape(1))[0])

    def size(self, a: torch.Tensor) -> int:
        return int(self.sum(torch.full((1,), float(a.numel()), dtype=torch.float64, device=a.device)))

    def views(self, a: torch.Tensor):
        return [a[offset:offset + numel] for offset, numel in self.segments]

    def segment_dots(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """⟨a_s, b_s⟩ for every parameter tensor s (one collective for all of them), float64."""
        local = torch.stack([torch.dot(x, y) for x, y in zip(self.views(a), self.views(b))]).double()
        return self._global(local)

    @staticmethod
    def axpy(y: torch.Tensor, alpha: float, x: torch.Tensor) -> torch.Tensor:
        """y ← y + alpha·x, in place."""
        return y.add_(x, alpha=alpha)

    @staticmethod
    def where(condition: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(condition, a, b)


def cosine(dot: float, norm_a: float, norm_b: float) -> Optional[float]:
    return dot / (norm_a * norm_b) if norm_a > 0 and norm_b > 0 else None
