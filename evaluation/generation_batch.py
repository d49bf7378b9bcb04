"""Which prompts share a greedy batch: prompts of similar length (`length_buckets`), as many as the
key/value cache and the prompt pass fit in a share of the free memory (`rows_that_fit`), up to
MAX_ROWS.

A decoding step costs a fixed overhead (Python, kernel launches, one read of the weights) plus a
per-row part, so larger batches are faster until the per-row part dominates: on a CPU and, at 7B,
on a GPU (compute catches up with the weight reads) that happens near 256 rows, hence the cap
(measurements: CHANGELOG.md, `benchmarks/bench_eval_speed.py`).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

MAX_ROWS = 256
FALLBACK_ROWS = 64        # models whose config does not say their cache size (or unknown devices)
CPU_MEMORY_FRACTION = 0.25  # of the available RAM: the DAG runs several jobs side by side
GPU_MEMORY_FRACTION = 0.8   # of the device's free memory (weights already loaded)
# Padding positions cost attention reads like real ones: a batch's padded cache may exceed the positions
# its rows fill by this fraction (RWKU's prompts run from 24 to 1,885 tokens; TOFU's stay in one batch).
PADDING_WASTE = 0.25


def text_config(model):
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "get_text_config"):
        config = config.get_text_config()
    return config


def kv_bytes_per_position(config, itemsize: int) -> int | None:
    """Bytes of keys and values one token position adds to the cache, over all layers."""
    layers = getattr(config, "num_hidden_layers", None)
    heads = getattr(config, "num_attention_heads", None)
    hidden = getattr(config, "hidden_size", None)
    if not (layers and heads and hidden):
        return None
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    return 2 * layers * kv_heads * head_dim * itemsize


def bytes_per_row(config, itemsize: int, prompt_tokens: int, positions: int) -> int | None:
    """Peak memory one row needs: its cache at `positions`, plus the prompt pass's largest live
    tensors (a layer's activations, attention scores if the kernel forms them, one logits row)."""
    kv = kv_bytes_per_position(config, itemsize)
    if kv is None:
        return None
    hidden = config.hidden_size
    intermediate = getattr(config, "intermediate_size", None) or 4 * hidden
    activations = prompt_tokens * (6 * hidden + 3 * intermediate) * itemsize
    scores = config.num_attention_heads * prompt_tokens * prompt_tokens * 4  # fp32, math attention path
    logits = 2 * getattr(config, "vocab_size", 0) * 4
    return positions * kv + activations + scores + logits


def free_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(GPU_MEMORY_FRACTION * (free + cached))
    if device.type == "cpu":
        import psutil

        return int(CPU_MEMORY_FRACTION * psutil.virtual_memory().available)
    return None


def rows_that_fit(model, prompt_tokens: int, new_tokens: int, headroom: int = 0) -> int:
    """Rows of a greedy batch whose longest prompt has `prompt_tokens` tokens and which decodes up to
    `new_tokens` more; `headroom`: positions the cache allocates beyond those (growing_cache)."""
    parameter = next(model.parameters())
    dtype = getattr(model, "dtype", parameter.dtype)  # transformers: the floating dtype (quantized weights aside)
    config = text_config(model)
    per_row = None if config is None else bytes_per_row(config, dtype.itemsize, prompt_tokens,
                                                        prompt_tokens + new_tokens + headroom)
    budget = free_bytes(parameter.device)
    if per_row is None or budget is None:
        return FALLBACK_ROWS
    return max(1, min(MAX_ROWS, budget // per_row))


def forward_rows(model, tokens: int, cap: int, logits_bytes_per_position: int = 0) -> int:
    """Rows of a teacher-forced (scoring) batch whose longest sequence has `tokens` tokens, at most
    `cap`: the forward's cache, activations and attention scores per row (bytes_per_row), plus
    `logits_bytes_per_position` × vocabulary for each position whose full logits row is formed (0 when
    the head runs on labelled positions only, token_statistics). With a 49k vocabulary or 2k-token
    texts a fixed 32 rows needed ~10 GB; a model the size of the tiny Llama always gets `cap`."""
    parameter = next(model.parameters())
    dtype = getattr(model, "dtype", parameter.dtype)
    config = text_config(model)
    per_row = None if config is None else bytes_per_row(config, dtype.itemsize, max(tokens, 1), max(tokens, 1))
    budget = free_bytes(parameter.device)
    if per_row is None or budget is None:
        return cap
    per_row += max(tokens, 1) * getattr(config, "vocab_size", 0) * logits_bytes_per_position
    return max(1, min(cap, budget // per_row))


def length_buckets(lengths: list[int], new_tokens: int, max_rows: Callable[[int], int],
                   waste: float = PADDING_WASTE) -> list[list[int]]:
    """Indices of prompts of these token `lengths` in generation batches, longest first. A batch
    holds at most `max_rows(its longest prompt)` rows, and its padded cache (rows × (longest +
    new_tokens) positions) at most (1 + waste) times the positions its rows fill."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, start = [], 0
    while start < len(order):
        longest = lengths[order[start]]
        cap, width, filled, stop = max(1, max_rows(longest)), longest + new_tokens, 0, start
        while stop < len(order) and stop - start < cap:
            with_next = filled + lengths[order[stop]] + new_tokens
            if stop > start and (stop - start + 1) * width > (1 + waste) * with_next:
                break  # the remaining prompts are shorter still
            filled, stop = with_next, stop + 1
        batches.append(order[start:stop])
        start = stop
    return batches
