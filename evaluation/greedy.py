"""Greedy decoding that drops finished sequences from the batch.

`model.generate` keeps a finished row in the batch until the longest one ends, so one runaway
answer makes a whole batch pay for its 200 tokens. This loop evicts finished rows from the batch
and from the key/value cache (`Cache.batch_select_indices`), in groups (EVICT_FRACTION), so each
sequence costs little more than its own length. It is plain greedy search: argmax of the
next-token logits, no logits processors. It is used only for models whose generation settings add
none (`plain_greedy_model`); anything else (repetition penalties, GRUN's generation-time edits)
goes through `model.generate`.
Hand-written because transformers' generate has no per-row eviction.
"""
from __future__ import annotations

import torch

from evaluation.growing_cache import growing_cache

# Finished rows leave the batch once they are this fraction of it (a lone row at once when few
# remain): each eviction copies the whole cache, so rows are evicted in groups, and a finished
# row costs one wasted position per step until then.
EVICT_FRACTION = 1 / 8

# generation_config fields that would change greedy argmax decoding in `model.generate`
_NEUTRAL = {"repetition_penalty": (None, 1.0), "no_repeat_ngram_size": (None, 0), "bad_words_ids": (None,),
            "suppress_tokens": (None,), "begin_suppress_tokens": (None,), "forced_bos_token_id": (None,),
            "forced_eos_token_id": (None,), "min_length": (None, 0), "min_new_tokens": (None, 0),
            "encoder_repetition_penalty": (None, 1.0), "sequence_bias": (None,), "exponential_decay_length_penalty": (None,)}


def plain_greedy_model(model) -> bool:
    """True when `model.generate(do_sample=False)` would be exactly argmax decoding for this model."""
    if getattr(model, "edits_prompt_positions", False):  # e.g. GRUN edits the prompt's last position while generating
        return False
    config = getattr(model, "generation_config", None)
    return config is None or all(getattr(config, name, None) in allowed for name, allowed in _NEUTRAL.items())


def cache_keyword(model) -> str:
    """The forward's keyword for a key/value cache: `cache` (recent transformers) or `past_key_values`."""
    import inspect

    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in parameters else "past_key_values"


@torch.inference_mode()
def greedy_decode(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
                  stop_ids: list[int]) -> tuple[list[list[int]], int]:
    """New tokens per row (a stop token included, as `generate` returns it) of a LEFT-padded batch,
    and the number of token positions the model processed."""
    rows = input_ids.shape[0]
    outputs: list[list[int]] = [[] for _ in range(rows)]
    if max_new_tokens <= 0 or rows == 0:
        return outputs, 0
    device = input_ids.device
    stops = torch.tensor(sorted(set(stop_ids)), device=device)
    mask = attention_mask
    positions = (mask.cumsum(1) - 1).clamp_min(0)
    keyword = cache_keyword(model)
    start_cache = growing_cache(model)
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1,
                **({keyword: start_cache} if start_cache is not None else {}))
    cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
    alive = torch.arange(rows, device=device)
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    next_position = positions[:, -1] + 1
    processed, length = int(input_ids.numel()), input_ids.shape[1]
    token = out.logits[:, -1].argmax(-1)
    for step in range(max_new_tokens):
        for row, value, done in zip(alive.tolist(), token.tolist(), finished.tolist()):
            if not done:
                outputs[row].append(value)
        if step == max_new_tokens - 1:
            break
        finished |= torch.isin(token, stops)
        done_count = int(finished.sum())
        if done_count == len(alive):
            break
        if done_count and done_count >= len(alive) * EVICT_FRACTION:
            kept = (~finished).nonzero()[:, 0]
            cache.batch_select_indices(kept)
            alive, token, mask, next_position = alive[kept], token[kept], mask[kept], next_position[kept]
            finished = finished[kept]
        mask = torch.cat([mask, torch.ones((len(alive), 1), dtype=mask.dtype, device=device)], dim=1)
        out = model(input_ids=token[:, None], attention_mask=mask, position_ids=next_position[:, None],
                    use_cache=True, cache_position=torch.tensor([length], device=device), **{keyword: cache})
        cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
        processed += len(alive)
        length += 1
        next_position = next_position + 1
        token = out.logits[:, -1].argmax(-1)
    return outputs, processed
