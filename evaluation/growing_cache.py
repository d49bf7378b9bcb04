"""A key/value cache that appends in place, for the greedy decoding loop.

transformers' DynamicLayer appends each new token with `torch.cat`, which copies the whole cache at
every step: O(length²) memory traffic per sequence (15-35% of the generation time of the tiny Llama
on a CPU, measured), and on a GPU at 7B a copy as large as the weight reads. This layer keeps its
keys and values in a buffer with room for GROWTH_STEP more positions and writes new ones into it;
the buffer is reallocated only when full (every GROWTH_STEP steps), and evicting rows gathers them
once. Attention reads a view of the filled part, so the values are identical.
Hand-written because transformers' cache layers either copy per token (dynamic) or need the final
length and cannot drop rows (static).
"""
from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

GROWTH_STEP = 128  # positions of headroom per reallocation


class GrowingLayer(DynamicLayer):
    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self._key_buffer = self._value_buffer = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start = self.get_seq_length()
        stop = start + key_states.shape[-2]
        if not self._owns_views() or self._key_buffer.shape[-2] < stop:
            self._key_buffer = _with_room(self.keys, key_states, stop)
            self._value_buffer = _with_room(self.values, value_states, stop)
        self._key_buffer[..., start:stop, :] = key_states
        self._value_buffer[..., start:stop, :] = value_states
        self.keys, self.values = self._key_buffer[..., :stop, :], self._value_buffer[..., :stop, :]
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep rows `indices`: one gather into a buffer that keeps its headroom (the dynamic layer's
        gather would be followed by a second copy into a new buffer at the next update)."""
        if not self._owns_views():
            super().batch_select_indices(indices)
            return
        stop = self.get_seq_length()
        self._key_buffer = self._key_buffer.index_select(0, indices)
        self._value_buffer = self._value_buffer.index_select(0, indices)
        self.keys, self.values = self._key_buffer[..., :stop, :], self._value_buffer[..., :stop, :]

    def _owns_views(self) -> bool:
        """Whether the keys are a view of this layer's buffer; False before the first buffer and after
        other code replaced them (the next update then copies them into a new buffer)."""
        buffer = self._key_buffer
        return (buffer is not None and self.keys.numel() > 0 and self.keys.shape[0] == buffer.shape[0]
                and self.keys.data_ptr() == buffer.data_ptr())


def _with_room(current: torch.Tensor, new: torch.Tensor, needed: int) -> torch.Tensor:
    shape = list(new.shape)
    shape[-2] = needed + GROWTH_STEP
    buffer = new.new_empty(shape)
    if current.numel():
        buffer[..., :current.shape[-2], :] = current
    return buffer


def growing_cache(model) -> DynamicCache | None:
    """A DynamicCache of GrowingLayers when every layer of `model` uses a plain dynamic layer
    (no sliding windows or other layer kinds), else None (use the model's own cache)."""
    config = getattr(model, "config", None)
    if config is None:
        return None
    try:
        cache = DynamicCache(config=config)
    except Exception:  # configs the dynamic cache cannot read: keep the model's default
        return None
    if not cache.layers or any(type(layer) is not DynamicLayer for layer in cache.layers):
        return None
    cache.layers = [GrowingLayer() for _ in cache.layers]
    return cache
