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


def encode_text_chunks(tokenizer, texts: list[str] | tuple[str, ...], max_length: int) -> list[dict[str, torch.Tensor]]:
    """Raw-text training data (MUSE, WMDP, RWKU corpora): the documents are tokenised without special
    tokens, joined with EOS between documents, and cut into consecutive pieces of `max_length` tokens
    (BOS first when the tokenizer has one); every token after BOS is labelled. A short last piece
    is kept (it is padded, never silently dropped)."""
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2 for text chunks, got {max_length}")
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token; set tokenizer.eos_token before encoding")
    stream: list[int] = []
    for index, text in enumerate(texts):
        if index:
            stream.append(tokenizer.eos_token_id)
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    width = max_length - len(bos)
    chunks = []
    for start in range(0, len(stream), width):
        ids = bos + stream[start:start + width]
        labels = [IGNORE_INDEX] * len(bos) + ids[len(bos):]
        chunks.append({"input_ids": torch.tensor(ids, dtype=torch.long),
                       "attention_mask": torch.ones(len(ids), dtype=torch.long),
                       "labels": torch.tensor(labels, dtype=torch.long)})
    return chunks


def encode_text_documents(tokenizer, texts: list[str] | tuple[str, ...], max_length: int) -> list[dict[str, torch.Tensor]]:
    """Raw-text training data, one example per document (official WMDP-RMU: `tokenizer(batch,
    truncation=True, max_length=L)`): BOS when the tokenizer has one, then the document's first
    tokens up to `max_length` in total; no EOS; every token after BOS is labelled. A document with
    no tokens is skipped."""
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2 for text documents, got {max_length}")
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    examples = []
    for text in texts:
        body = tokenizer(text, add_special_tokens=False)["input_ids"][:max_length - len(bos)]
        if not body:
            continue
        ids = bos + body
        labels = [IGNORE_INDEX] * len(bos) + body
        examples.append({"input_ids": torch.tensor(ids, dtype=torch.long),
                         "attention_mask": torch.ones(len(ids), dtype=torch.long),
                         "labels": torch.tensor(labels, dtype=torch.long)})
    return examples


def encode_corpus(tokenizer, prompt_format: PromptFormat, corpus, max_length: int) -> list[dict[str, torch.Tensor]]:
    """Encoded training examples of a benchmark `Corpus` (QA pairs or raw texts); a corpus's own
    `max_length` wins over the run's."""
    length = getattr(corpus, "max_length", None) or max_length
    if corpus.kind == "qa":
        return [encode_qa(tokenizer, prompt_format, q, a, length) for q, a in corpus.items]
    if getattr(corpus, "packing", "concatenate") == "truncate":
        return encode_text_documents(tokenizer, corpus.items, length)
    return encode_text_chunks(tokenizer, corpus.items, length)
