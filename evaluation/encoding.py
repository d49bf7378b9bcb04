"""Encoding a QA pair for training and scoring: the contract the training engine consumes.

TOFU recipe (metrics.md §1.1): the prompt and answer are tokenised together (with BOS), truncated
to `max_length`; labels are −100 on the prompt tokens, then the answer tokens, then one EOS.
"""
from __future__ import annotations

import torch

from evaluation.prompts import PromptFormat

IGNORE_INDEX = -100


def encode_qa(tokenizer, prompt_format: PromptFormat, question: str, answer: str,
              max_length: int) -> dict[str, torch.Tensor]:
    """`{"input_ids", "attention_mask", "labels"}`, 1-D long tensors; labels −100 on the prompt."""
    prompt = prompt_format.prompt(question, tokenizer)
    return encode_prompt_continuation(tokenizer, prompt, answer, max_length)


def encode_prompt_continuation(tokenizer, prompt: str, continuation: str,
                               max_length: int) -> dict[str, torch.Tensor]:
    """Encode `prompt + continuation` + EOS with only the continuation and EOS labelled."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token; set tokenizer.eos_token before encoding")
    chat_rendered = prompt.startswith(tokenizer.bos_token or "\0")  # chat templates add BOS themselves
    add_special = not chat_rendered
    full_ids = tokenizer(prompt + continuation, add_special_tokens=add_special)["input_ids"]
    prompt_len = len(tokenizer(prompt, add_special_tokens=add_special)["input_ids"])
    ids = (full_ids + [tokenizer.eos_token_id])[:max_length]
    labels = list(ids)
    labels[: min(prompt_len, len(labels))] = [IGNORE_INDEX] * min(prompt_len, len(labels))
    return {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "attention_mask": torch.ones(len(ids), dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
    }


def pad_batch(examples: list[dict[str, torch.Tensor]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-padded stack of encoded examples (labels padded with −100, mask with 0)."""
    width = max(len(e["input_ids"]) for e in examples)
    fills = {"input_ids": pad_token_id, "attention_mask": 0, "labels": IGNORE_INDEX}
    batch = {}
    for key, fill in fills.items():
        rows = [torch.nn.functional.pad(e[key], (0, width - len(e[key])), value=fill) for e in examples]
        batch[key] = torch.stack(rows)
    return batch
