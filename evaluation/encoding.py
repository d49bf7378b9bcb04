"""Encoding a QA pair for training and scoring: the contract the training engine consumes.

TOFU recipe (metrics.md §1.1): the prompt and answer are tokenised together (with BOS), truncated
to `max_length`; labels are −100 on the prompt tokens, then the answer tokens, then one EOS.

Which tokens are "answer" is decided by character offsets of the full text, not by tokenising
the prompt alone: a byte-level BPE tokenizer (GPT-2, Llama-3, Phi) tokenises "…Answer: " alone
with a lone trailing space token, which in the full text merges into the first answer word
(" Oslo"); counting prompt tokens would mask that first answer token. A token is labelled when
its characters reach past the label boundary, so the merged token is labelled (its leading space
is the prompt's). This needs a fast tokenizer (offset mapping); every tokenizer we load is one.

That is the label-span rule `offsets`. open-unlearning (preprocess_chat_instance) and TOFU's own code
label `ids[len(tokenizer(prompt)):]` instead (`prompt_length`): with a byte-level BPE or
SentencePiece tokenizer and plain tags ("…Answer: ") they never score the first answer token, and
an answer whose first token swallows the prompt's last characters is shorter by one. Evaluator
variants whose numbers stand beside OU's or TOFU's published ones use that rule (recorded as
`label_span` in the evaluator block); with a tokenizer that never merges across the boundary (the
tiny word-level one, chat templates ending in a header) both rules label the same tokens.
"""
from __future__ import annotations

import torch

from evaluation.prompts import PromptFormat

IGNORE_INDEX = -100
# which text the labels cover: the answer (ours, OU) or, like TOFU-legacy, everything after the
# question end tag, so for Phi the "Answer: " tag is labelled too (legacy counts only the tokens of
# q_start + question + q_end as the question)
LABEL_ANSWER = "answer"
LABEL_AFTER_QUESTION = "answer_tag+answer"
LABEL_SPANS = (LABEL_ANSWER, LABEL_AFTER_QUESTION)
# where the labelled tokens start: the first token whose characters reach past the label boundary
# (ours), or index len(tokenizer(text before the boundary)) (open-unlearning, TOFU)
SPAN_OFFSETS = "offsets"
SPAN_PROMPT_LENGTH = "prompt_length"
LABEL_SPAN_RULES = (SPAN_OFFSETS, SPAN_PROMPT_LENGTH)


def encode_qa(tokenizer, prompt_format: PromptFormat, question: str, answer: str,
              max_length: int, *, labels_from: str = LABEL_ANSWER) -> dict[str, torch.Tensor]:
    """`{"input_ids", "attention_mask", "labels"}`, 1-D long tensors; labels −100 on the prompt."""
    prompt = prompt_format.prompt(question, tokenizer)
    return encode_prompt_continuation(tokenizer, prompt, answer, max_length,
                                      label_start=label_start(prompt_format, prompt, labels_from))


def label_start(prompt_format: PromptFormat, prompt: str, labels_from: str = LABEL_ANSWER) -> int:
    """Character index in `prompt + answer` where the labelled text begins."""
    if labels_from not in LABEL_SPANS:
        raise ValueError(f"labels_from must be one of {LABEL_SPANS}, got {labels_from!r}")
    if labels_from == LABEL_ANSWER or prompt_format.chat_template:
        return len(prompt)
    return len(prompt) - len(prompt_format.answer_tag)


def encode_prompt_continuation(tokenizer, prompt: str, continuation: str, max_length: int,
                               *, label_start: int | None = None, label_span: str = SPAN_OFFSETS,
                               add_special_tokens: bool | None = None) -> dict[str, torch.Tensor]:
    """Encode `prompt + continuation` + EOS with only the continuation and EOS labelled.

    `label_start` (default `len(prompt)`) moves the label boundary into the prompt (TOFU-legacy's
    labelled answer tag). `label_span` (LABEL_SPAN_RULES) says which token is the first labelled
    one: by character offsets, or at index len(tokenizer(text before the boundary)) as OU and TOFU
    count. `add_special_tokens` None: the tokenizer's special tokens unless the prompt already
    starts with BOS (a rendered chat template); True adds them anyway (RWKU's official code: a
    second BOS). The result also holds `prefix_labels`: how many labelled tokens lie before
    `len(prompt)` (the tag), so metrics over the answer alone can skip them, and `eos_kept` (False
    when truncation cut the EOS label off).
    """
    if label_span not in LABEL_SPAN_RULES:
        raise ValueError(f"label_span must be one of {LABEL_SPAN_RULES}, got {label_span!r}")
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token; set tokenizer.eos_token before encoding")
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(f"{type(tokenizer).__name__} is a slow tokenizer: answer labels need character "
                        "offsets; load the fast one (AutoTokenizer.from_pretrained(..., use_fast=True))")
    boundary = len(prompt) if label_start is None else label_start
    chat_rendered = prompt.startswith(tokenizer.bos_token or "\0")  # chat templates add BOS themselves
    special = not chat_rendered if add_special_tokens is None else add_special_tokens
    encoded = tokenizer(prompt + continuation, add_special_tokens=special, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    if label_span == SPAN_OFFSETS:
        # special tokens added by the post-processor have offsets (0, 0): never labelled
        labelled = [end > boundary and end > start for start, end in encoded["offset_mapping"]]
    else:
        first = len(tokenizer((prompt + continuation)[:boundary], add_special_tokens=special)["input_ids"])
        labelled = [index >= first for index in range(len(ids))]
    in_tag = [lab and end <= len(prompt) for lab, (_, end) in zip(labelled, encoded["offset_mapping"])]
    eos_kept = len(ids) < max_length
    ids, labelled, in_tag = ids + [tokenizer.eos_token_id], labelled + [True], in_tag + [False]
    ids, labelled, in_tag = ids[:max_length], labelled[:max_length], in_tag[:max_length]
    labels = [i if keep else IGNORE_INDEX for i, keep in zip(ids, labelled)]
    return {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "attention_mask": torch.ones(len(ids), dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
        "prefix_labels": sum(in_tag),   # plain ints: the training collator reads only the tensors
        "eos_kept": eos_kept,
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


def encode_corpus(tokenizer, prompt_format: PromptFormat, corpus, max_length: int, *,
                  labels_from: str = LABEL_ANSWER) -> list[dict[str, torch.Tensor]]:
    """Encoded training examples of a benchmark `Corpus` (QA pairs or raw texts); a corpus's own
    `max_length` wins over the run's."""
    length = getattr(corpus, "max_length", None) or max_length
    if corpus.kind == "qa":
        return [encode_qa(tokenizer, prompt_format, q, a, length, labels_from=labels_from) for q, a in corpus.items]
    if getattr(corpus, "packing", "concatenate") == "truncate":
        return encode_text_documents(tokenizer, corpus.items, length)
    return encode_text_chunks(tokenizer, corpus.items, length)
