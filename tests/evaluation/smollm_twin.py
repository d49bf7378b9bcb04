"""A tiny random model of SmolLM2-135M-Instruct's config family, for tests that must not need the real one.

Same architecture choices as the real model (LlamaForCausalLM, tied embeddings, grouped-query
attention 3 heads / 1 KV head, rope), a byte-level BPE tokenizer trained here with `tokenizers`
with SmolLM2's special tokens (<|endoftext|> 0 = unk, <|im_start|> 1 = BOS, <|im_end|> 2 = EOS and
pad) and its ChatML chat template (which adds its own system prompt when none is given).
"""
from __future__ import annotations

from pathlib import Path

SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def train_tokenizer(texts: list[str], vocab_size: int = 600):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(texts + ["system user assistant You are a helpful AI assistant named SmolLM"], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tokenizer.chat_template = SMOLLM2_CHAT_TEMPLATE
    return tokenizer


def build(out_dir: str | Path, texts: list[str], *, seed: int = 0, card: dict | None = None,
          chat_template: bool = True) -> Path:
    """Save a random tiny SmolLM2-family model + tokenizer (and, with `card`, a ubench model card)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from evaluation.models import write_model_card

    tokenizer = train_tokenizer(texts)
    if not chat_template:
        tokenizer.chat_template = None
    assert [tokenizer.convert_tokens_to_ids(t) for t in SPECIALS] == [0, 1, 2]
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=3, num_key_value_heads=1, head_dim=16, max_position_embeddings=512,
                         tie_word_embeddings=True, rope_theta=100000.0, rms_norm_eps=1e-5,
                         bos_token_id=1, eos_token_id=2, pad_token_id=2)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if card is not None:
        write_model_card(out, card.pop("preset", "smollm2-135m"), card.pop("prompt_format", "chat-template"), **card)
    return out
