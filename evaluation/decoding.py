"""Decoding generated and reference tokens to text, with a recorded `clean_up_tokenization_spaces` rule.

transformers' clean-up (" ." -> ".", " n't" -> "n't", " 's" -> "'s", ...) changes the text ROUGE
reads, and its behaviour depends on the version: transformers 4.x applied the tokenizer's own flag
(`clean_up_tokenization_spaces` in tokenizer_config.json, True when unset) to every tokenizer, and
open-unlearning passes `clean_up_tokenization_spaces=True` explicitly; transformers 5 defaults the
flag to False and ignores True for BPE tokenizers (Llama-2/3, Phi, GPT-2). So the rule is an
evaluator variant field:

- `as_loaded`: whatever this transformers version does with the tokenizer as loaded (the default:
  unchanged behaviour);
- `on`: always clean up, BPE included (open-unlearning's `eval_text_similarity`);
- `off`: never;
- `tokenizer_flag`: the tokenizer's own flag, BPE included (what official code on transformers 4.x did
  when it passed nothing: TOFU, RWKU).
"""
from __future__ import annotations

AS_LOADED, ON, OFF, TOKENIZER_FLAG = "as_loaded", "on", "off", "tokenizer_flag"
CLEAN_UP_RULES = (AS_LOADED, ON, OFF, TOKENIZER_FLAG)


def check_rule(rule: str) -> str:
    if rule not in CLEAN_UP_RULES:
        raise ValueError(f"decode_clean_up must be one of {CLEAN_UP_RULES}, got {rule!r}")
    return rule


def decode(tokenizer, ids, rule: str = AS_LOADED) -> str:
    """`ids` decoded without special tokens, cleaned up per `rule`."""
    check_rule(rule)
    if rule == AS_LOADED:
        return tokenizer.decode(ids, skip_special_tokens=True)
    text = tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    clean = rule == ON or (rule == TOKENIZER_FLAG and bool(getattr(tokenizer, "clean_up_tokenization_spaces", True)))
    return tokenizer.clean_up_tokenization(text) if clean else text


def batch_decode(tokenizer, rows, rule: str = AS_LOADED) -> list[str]:
    if check_rule(rule) == AS_LOADED:  # one call, as before
        return tokenizer.batch_decode(rows, skip_special_tokens=True)
    return [decode(tokenizer, row, rule) for row in rows]


def describe(rule: str) -> str:
    return {AS_LOADED: "this transformers version's default for the tokenizer as loaded (v5: off for BPE)",
            ON: "always (open-unlearning passes clean_up_tokenization_spaces=True), BPE included",
            OFF: "never",
            TOKENIZER_FLAG: "the tokenizer's own clean_up_tokenization_spaces flag, BPE included "
                            "(transformers 4.x, which the official code ran on)"}[check_rule(rule)]
