"""The global batch: how many examples one optimizer step consumes.

A step consumes batch_size × grad_accum × num_processes examples (every rank of a data-parallel
launch draws its own micro-batches). Papers state the global batch; a config that states it as
`global_batch_size` gets grad_accum derived for the process count it is launched with, so moving a
run from 1 to 4 GPUs keeps the paper's step. Plain Python: the grid (no torch) and the training
entry points share it.
"""
from __future__ import annotations


def grad_accum_for(global_batch_size: int, batch_size: int, num_processes: int, where: str = "") -> int:
    """grad_accum such that batch_size × grad_accum × num_processes == global_batch_size, or a
    ValueError naming `where` and the settings that would divide."""
    prefix = f"{where}: " if where else ""
    for name, value in (("global_batch_size", global_batch_size), ("batch_size", batch_size),
                        ("num_processes", num_processes)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{prefix}{name} must be a positive integer, got {value!r}")
    per_accumulation = batch_size * num_processes
    if global_batch_size % per_accumulation:
        fits = [b for b in range(1, batch_size + 1) if global_batch_size % (b * num_processes) == 0]
        hint = (f"use batch_size {fits[-1]} (the largest that divides)" if fits else
                f"use a launcher whose process count divides {global_batch_size}")
        raise ValueError(f"{prefix}global_batch_size {global_batch_size} is not a multiple of batch_size "
                         f"{batch_size} x num_processes {num_processes} = {per_accumulation}; {hint}")
    return global_batch_size // per_accumulation


def global_batch(batch_size: int, grad_accum: int, num_processes: int) -> int:
    """Examples per optimizer step."""
    return batch_size * grad_accum * num_processes
