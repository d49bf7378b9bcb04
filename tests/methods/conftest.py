import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

torch.set_num_threads(1)
VOCAB = 64


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64)
    return LlamaForCausalLM(config)


def example(generator, length: int, prompt: int = 3) -> dict:
    ids = torch.randint(1, VOCAB, (length,), generator=generator)
    labels = ids.clone()
    labels[:prompt] = -100
    return {"input_ids": ids, "attention_mask": torch.ones(length, dtype=torch.long), "labels": labels}


def make_streams(seed: int = 1, n_forget: int = 12, n_retain: int = 16) -> dict:
    g = torch.Generator().manual_seed(seed)
    forget = [example(g, 6 + i % 4) for i in range(n_forget)]
    return {"forget": forget, "retain": [example(g, 5 + i % 5) for i in range(n_retain)],
            "forget_idk": [example(g, 7) for _ in range(n_forget)], "train": forget}


@pytest.fixture
def streams():
    return make_streams()
