"""The gradient space: flat fp32 buffers with *global* reductions.

A flat buffer holds one value per trainable coordinate this rank stores; `segments` gives each
parameter's (offset, numel) inside it. Under DDP every rank holds the full, already all-reduced
buffer, so local sums are global. Under sharding (FSDP2 DTensor gradients) a rank holds only its
shard, so partial sums are all-reduced over `shard_group` — the step SAGO's official code misses.
Every partial sum stays on the buffers' device: NCCL accepts only device tensors, so nothing here
(or in an analyzer) may build a host tensor for a collective.
Hand-written because no library exposes global dot products over a sharded gradient set.

Speed at a real size (134.5 M parameters, 538 MB per fp32 buffer): one pass over a buffer costs
about as much as the work a rectifier does on it, so the rules read each buffer as few times as
possible. `gram` gives every inner product among a few buffers in one pass (one matrix product per
chunk when the buffers are rows of one block, as the loop's task buffers are); rules whose update is
a linear combination of the buffers then derive its norm and dot products from that matrix, and
`foreach` runs several element-wise operations on cache-sized chunks, so they cost about one pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.distributed as dist


CACHE_BYTES = 2 << 20    # a CPU core's L2 cache (2 MiB on current server cores): a chunk's working set fits
DEVICE_CHUNK = 1 << 24   # on an accelerator chunks only bound the temporaries (64 MB each in fp32)


def cpu_chunk(working_set: int, element_size: int = 4) -> int:
    """Elements per chunk on a CPU so that `working_set` chunk-sized arrays fit in L2 (a power of two:
    too small a chunk pays the per-operation overhead, too large one streams from memory per op)."""
    return max(1 << 12, 1 << (CACHE_BYTES // (working_set * element_size)).bit_length() - 1)


@dataclass
class GradSpace:
    segments: list[tuple[int, int]]
    shard_group: Optional[object] = None  # a process group when buffers hold shards, else None
    chunk: Optional[int] = None           # elements per chunk in `foreach` / `gram`; None: by device and working set

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

    def pieces(self, a: torch.Tensor, by_segment: bool = False, working_set: int = 3) -> list[tuple[int, int, int]]:
        """(segment index or -1, start, end) covering `a`'s last dimension in chunks; with `by_segment`
        no chunk crosses a parameter tensor's boundary. `working_set`: how many chunk-sized arrays the
        work on one chunk touches (rows and temporaries), which sets the chunk size on a CPU."""
        size = self.chunk or (cpu_chunk(working_set, a.element_size()) if a.device.type == "cpu" else DEVICE_CHUNK)
        spans = self.segments if by_segment else [(0, a.shape[-1])]
        return [(index if by_segment else -1, start, min(start + size, offset + numel))
                for index, (offset, numel) in enumerate(spans) for start in range(offset, offset + numel, size)]

    def foreach(self, fn: Callable, *tensors: torch.Tensor, sums: int = 0, by_segment: bool = False,
                temporaries: int = 0):
        """Call fn on the matching chunks of `tensors` (fn(segment, *chunks) with `by_segment`): the
        element-wise work on a chunk stays in cache, so several operations cost about one pass over
        memory; 2-D tensors (rows of a block) are chunked along their last dimension. fn may edit its
        chunks in place; when `sums` > 0 it returns that many partial sums,
        which come back added over the chunks and over shards (float64, on the tensors' device).
        `temporaries`: chunk-sized arrays fn allocates, for the chunk size."""
        total = torch.zeros(sums, dtype=torch.float64, device=tensors[0].device) if sums else None
        rows = sum(t.shape[0] if t.dim() == 2 else 1 for t in tensors)
        for segment, start, end in self.pieces(tensors[0], by_segment, rows + temporaries):
            chunks = [t[..., start:end] for t in tensors]  # a [k, n] block (stacked_view) gives [k, chunk]
            partial = fn(segment, *chunks) if by_segment else fn(*chunks)
            if sums:
                total += partial
        return self._global(total) if sums else None

    def gram(self, rows: Sequence[torch.Tensor], per_segment: bool = False) -> torch.Tensor:
        """G[i, j] = ⟨rows_i, rows_j⟩ for all pairs in one pass over the rows, global, float64 on the
        rows' device: [k, k], or [segments, k, k] with `per_segment`. fp32 products per chunk, summed
        in float64 (more exact than one fp32 dot over the whole buffer)."""
        k, device = len(rows), rows[0].device
        block, extras = split_block(rows)
        out = torch.zeros((len(self.segments) if per_segment else 1, k, k), dtype=torch.float64, device=device)
        for segment, start, end in self.pieces(rows[0], per_segment, k):
            out[max(segment, 0)] += chunk_gram(block[:, start:end], [x[start:end] for x in extras]).double()
        return self._global(out if per_segment else out[0])

    @staticmethod
    def axpy(y: torch.Tensor, alpha: float, x: torch.Tensor) -> torch.Tensor:
        """y ← y + alpha·x, in place."""
        return y.add_(x, alpha=alpha)

    @staticmethod
    def where(condition: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(condition, a, b)


def stacked_view(rows: Sequence[torch.Tensor]) -> Optional[torch.Tensor]:
    """The rows as one [k, n] view without a copy when they are evenly spaced in one storage (the
    rows of a block, as TaskBuffers allocates them), else None."""
    first = rows[0]
    if any(r.dim() != 1 or r.stride(0) != 1 or r.dtype != first.dtype or r.numel() != first.numel()
           or r.untyped_storage().data_ptr() != first.untyped_storage().data_ptr() for r in rows):
        return None
    if len(rows) == 1:
        return first.unsqueeze(0)
    step = rows[1].storage_offset() - first.storage_offset()
    if step < first.numel() or any(r.storage_offset() - first.storage_offset() != i * step for i, r in enumerate(rows)):
        return None
    return first.as_strided((len(rows), first.numel()), (step, 1))


class Gram:
    """Inner products among named gradient-sized vectors (one `GradSpace.gram`), on the host.
    A rule whose update is a linear combination Σ c_i·v_i of them gets its norm and its dot products
    from here (`inner`) without reading the buffers again."""

    def __init__(self, names: Sequence[str], matrix: torch.Tensor, segments: Optional[torch.Tensor] = None):
        self.names = list(names)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.matrix = matrix.tolist()
        self.segments = segments  # [segments, k, k] on the buffers' device when asked per segment

    def dot(self, a: str, b: str) -> float:
        return self.matrix[self.index[a]][self.index[b]]

    def norm(self, a: str) -> float:
        return max(self.dot(a, a), 0.0) ** 0.5

    def inner(self, x: dict[str, float], y: dict[str, float]) -> float:
        """⟨Σ x_a·v_a, Σ y_b·v_b⟩."""
        return sum(xa * yb * self.dot(a, b) for a, xa in x.items() for b, yb in y.items() if xa and yb)

    def sq_norm(self, x: dict[str, float], cancellation: float = 1e-2) -> Optional[float]:
        """‖Σ x_a·v_a‖², or None when cancellation would cost digits: the entries carry a relative error
        of about 1e-6 of (Σ |x_a|·‖v_a‖)² (fp32 products per chunk), so a combination smaller than 1% of
        that is measured on the materialised vector instead (one more pass, rarely)."""
        value = self.inner(x, x)
        scale = sum(abs(xa) * self.norm(a) for a, xa in x.items()) ** 2
        return value if value >= cancellation * scale else None


def split_block(rows: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(the longest leading run of rows as one [p, n] view, the other rows)."""
    for p in range(len(rows), 1, -1):
        block = stacked_view(rows[:p])
        if block is not None:
            return block, list(rows[p:])
    return rows[0].unsqueeze(0), list(rows[1:])


def chunk_gram(block: torch.Tensor, extras: Sequence[torch.Tensor]) -> torch.Tensor:
    """The local Gram matrix [k, k] of block's rows followed by `extras`: one matrix product for the
    block, a matrix-vector product per extra row (no copy of the rows)."""
    if not extras:
        return torch.mm(block, block.T)
    p, k = block.shape[0], block.shape[0] + len(extras)
    out = block.new_empty((k, k))
    out[:p, :p] = torch.mm(block, block.T)
    for j, x in enumerate(extras):
        column = torch.mv(block, x)
        out[:p, p + j] = column
        out[p + j, :p] = column
        for i in range(j + 1):
            out[p + i, p + j] = out[p + j, p + i] = torch.dot(extras[i], x)
    return out


def local_gram(chunks: Sequence[torch.Tensor]) -> torch.Tensor:
    """The Gram matrix of a few chunks on this rank (fp32), for a rule that reads them anyway."""
    block, extras = split_block(chunks)
    return chunk_gram(block, extras)


def cosine(dot: float, norm_a: float, norm_b: float) -> Optional[float]:
    return dot / (norm_a * norm_b) if norm_a > 0 and norm_b > 0 else None
