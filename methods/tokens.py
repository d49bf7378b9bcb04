"""Token-level loss helpers shared by the objectives (one place for shifting and masking).

Conventions (methods.md notation): labels are -100 on prompt and padding tokens; CE_t is the
per-token cross-entropy of the next-token prediction; NLL is summed over answer tokens.
Losses are computed in fp32, as HF does for `outputs.loss`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100


def logits_of(model, batch: dict[str, torch.Tensor], **kwargs) -> torch.Tensor:
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **kwargs).logits


def token_ce(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(CE_t of shape [B, T-1], zero where unlabelled; mask of labelled positions)."""
    shifted_logits = logits[:, :-1, :].float()
    shifted_labels = labels[:, 1:]
    ce = F.cross_entropy(shifted_logits.reshape(-1, shifted_logits.size(-1)), shifted_labels.reshape(-1),
                         ignore_index=IGNORE, reduction="none").view(shifted_labels.shape)
    return ce, shifted_labels != IGNORE


def mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """HF `outputs.loss`: token mean over every labelled token of the batch."""
    ce, mask = token_ce(logits, labels)
    return ce.sum() / mask.sum().clamp(min=1)


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """NLL(x, y) = Σ_t CE_t per sequence, shape [B]."""
    ce, _ = token_ce(logits, labels)
    return ce.sum(dim=-1)


def answer_lengths(labels: torch.Tensor) -> torch.Tensor:
    """|y|: number of labelled (predicted) tokens per sequence, shape [B]."""
    return (labels[:, 1:] != IGNORE).sum(dim=-1)


def masked_token_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over every labelled token of the batch (same pooling as the HF loss)."""
    return (values * mask).sum() / mask.sum().clamp(min=1)
