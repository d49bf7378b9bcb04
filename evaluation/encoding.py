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


DOCUMENT_SEPARATOR = "\n\n"  # open-unlearning PretrainingDataset joins the documents with a blank line


def text_stream(tokenizer, texts: list[str] | tuple[str, ...]) -> tuple[list[int], str]:
    """The token stream of a raw-text corpus and the document boundary used (for provenance).

    open-unlearning's PretrainingDataset (src/data/pretraining.py) joins the documents with "\n\n"
    and tokenises the joined text without special tokens; so do we. A tokenizer that encodes
    "\n\n" to nothing (the tiny Llama's word-level tokenizer drops whitespace) would run the
    documents together, so for it the boundary is one EOS token between documents instead.
    """
    if not tokenizer(DOCUMENT_SEPARATOR, add_special_tokens=False)["input_ids"]:
        stream: list[int] = []
        for index, text in enumerate(texts):
            if index:
                stream.append(tokenizer.eos_token_id)
            stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        return stream, "eos"
    return tokenizer(DOCUMENT_SEPARATOR.join(texts), add_special_tokens=False)["input_ids"], "blank_line"


def encode_text_chunks(tokenizer, texts: list[str] | tuple[str, ...], max_length: int) -> list[dict[str, torch.Tensor]]:
    """Raw-text training data (MUSE, WMDP, RWKU corpora): the documents' token stream (`text_stream`)
    cut into consecutive pieces, each BOS (when the tokenizer has one) + up to max_length − 1 stream
    tokens; every token after BOS is labelled. A short last piece is kept (padded, never dropped).

    Two deliberate differences from open-unlearning's PretrainingDataset: a piece is at most
    `max_length` tokens in total, BOS included (OU puts BOS before `max_length` stream tokens, one
    over the model's context when max_length equals it), and we cut token ids directly instead of
    decoding each piece and re-tokenising it (OU's round trip can merge tokens at piece edges), so
    no stream token is lost or duplicated. OU's empty extra piece when the stream length is a
    multiple of max_length is not reproduced."""
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2 for text chunks, got {max_length}")
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token; set tokenizer.eos_token before encoding")
    stream, _ = text_stream(tokenizer, texts)
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


def encode_corpus(tokenizer, prompt_format: PromptFormat, corpus, max_length: int) -> list[dict[str, torch.Tensor]]:
    """Encoded training examples of a benchmark `Corpus` (QA pairs or raw texts)."""
    if corpus.kind == "qa":
        return [encode_qa(tokenizer, prompt_format, q, a, max_length) for q, a in corpus.items]
    return encode_text_chunks(tokenizer, corpus.items, max_length)
