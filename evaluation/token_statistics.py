"""Per-token statistics of teacher-forced scoring, computed block by block over the vocabulary.

Every labelled position needs vocabulary-wide maths: log-softmax, argmax, and Min-K++'s
μ_t = Σ_v p_v log p_v and σ_t. On [N, V] floats that is a dozen passes over memory; done at once on
all positions (tens of GB for TOFU forget10 with a 14k vocabulary) it cost more than the model
itself. Done in row blocks that stay in cache (CPU) or in bounded memory (GPU) it costs a third.
When the model's logits are exactly `head(hidden)`, the output head is applied block by block too,
on the labelled positions only: full [batch, length, vocab] logits are never formed.
"""
from __future__ import annotations

import numpy as np
import torch

MINKPP_VARIANCE_FLOOR = 1e-6  # OU clamps σ_t² here so near-deterministic positions do not divide by 0
CPU_BLOCK_ELEMENTS = 1 << 19  # 2 MiB of fp32 logits: one core's L2 cache on the machines we measured
GPU_BLOCK_ELEMENTS = 1 << 27  # 512 MiB of fp32 logits per block
# The output head runs on many rows at once, and the statistics then walk that chunk in cache-sized
# blocks: one head product per statistics block re-read the whole head weight every few rows
# (SmolLM2's 49k x 576 head, 113 MB, once per 10 rows: half of its scoring time on one core).
CPU_HEAD_ELEMENTS = 1 << 24   # 64 MiB of fp32 logits per head product
# Model types whose CausalLM forward is `lm_head(model(...).last_hidden_state)` with nothing after
# the head (no soft-capping, no logit scale); others are scored through their own forward.
PLAIN_HEAD_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "phi", "phi3", "olmo", "olmo2", "gemma",
                                    "gpt2", "gpt_neox", "opt"})


def split_head(model) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """(decoder, output head) when `model(...).logits == head(decoder(...).last_hidden_state)`, else None."""
    cls = type(model)
    if getattr(model, "edits_prompt_positions", False) or not (cls.__module__.startswith("transformers.") and cls.__name__.endswith("ForCausalLM")):
        return None  # GRUN edits inside its own forward; wrappers (PEFT, custom classes) keep their forward
    if getattr(getattr(model, "config", None), "model_type", None) not in PLAIN_HEAD_MODEL_TYPES:
        return None
    head, decoder = model.get_output_embeddings(), model.get_decoder()
    if not isinstance(head, torch.nn.Linear) or decoder is None or decoder is model:
        return None
    return decoder, head


def block_rows(vocab_size: int, device: torch.device) -> int:
    budget = GPU_BLOCK_ELEMENTS if device.type != "cpu" else CPU_BLOCK_ELEMENTS
    return max(1, budget // max(vocab_size, 1))


def head_rows(vocab_size: int, device: torch.device) -> int:
    """Rows per output-head product: a whole number of statistics blocks."""
    step = block_rows(vocab_size, device)
    if device.type != "cpu":
        return step
    return step * max(1, CPU_HEAD_ELEMENTS // max(vocab_size, 1) // step)


def token_statistics(rows: torch.Tensor, targets: torch.Tensor, head: torch.nn.Module | None = None,
                     moments: torch.Tensor | None = None) -> list[np.ndarray]:
    """[targets, log p(target), argmax hit, μ, σ] per row, as numpy arrays.

    `rows` are logits [N, V], or hidden states [N, H] when `head` maps them to logits. `moments`
    (bool per row, None: all) selects the rows whose μ and σ are computed; the others get NaN."""
    vocab = head.out_features if head is not None else rows.shape[-1]
    step = block_rows(vocab, rows.device)
    count = rows.shape[0]
    # results go into buffers allocated once: small per-block result tensors kept alive between the
    # blocks' freed [step, vocab] buffers fragmented glibc's heap (16.8k rows of SmolLM2's 49k
    # vocabulary: 11 GB resident for 0.5 GB of live data)
    columns = (torch.empty(count, device=rows.device), torch.empty(count, dtype=torch.bool, device=rows.device),
               torch.empty(count, device=rows.device), torch.empty(count, device=rows.device))
    chunk = head_rows(vocab, rows.device) if head is not None else max(count, 1)
    for start in range(0, count, chunk):
        logits = head(rows[start:start + chunk]) if head is not None else rows[start:start + chunk]
        for offset in range(0, logits.shape[0], step):
            i = start + offset
            values = _block_statistics(logits[offset:offset + step].float(), targets[i:i + step],
                                       None if moments is None else moments[i:i + step])
            for column, value in zip(columns, values):
                column[i:i + step] = value
        del logits
    return [targets.cpu().numpy()] + [column.cpu().numpy() for column in columns]


def _block_statistics(logits: torch.Tensor, targets: torch.Tensor,
                      moments: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    logp = torch.log_softmax(logits, dim=-1)
    token_logp = logp.gather(1, targets[:, None])[:, 0]
    hits = logp.argmax(dim=-1) == targets
    chosen = logp if moments is None else logp[moments]
    p = chosen.exp()
    mu = torch.linalg.vecdot(p, chosen)
    # Σ p (log p − μ)², the two-pass form of Σ p (log p)² − μ²: the one-pass difference of two numbers
    # near (log V)² cancels catastrophically in fp32 (errors ~1e-4 in σ). `chosen` is reused in place.
    sigma = torch.linalg.vecdot(p, chosen.sub_(mu[:, None]).square_()).clamp_min(MINKPP_VARIANCE_FLOOR).sqrt()
    if moments is not None:
        mu = logits.new_full((len(targets),), float("nan")).index_put_((moments,), mu)
        sigma = logits.new_full((len(targets),), float("nan")).index_put_((moments,), sigma)
    return token_logp, hits, mu, sigma
