"""Block-wise vocabulary maths and the head-on-labelled-positions path give the plain values."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluation import models
from evaluation import token_statistics as ts
from evaluation.benchmarks.tofu.data import TofuData
from evaluation.encoding import encode_prompt_continuation
from evaluation.harness import Continuation, Harness
from evaluation.benchmarks.tofu.data import vocabulary_texts


@pytest.fixture(scope="module")
def tiny_model(tiny_folder, tmp_path_factory):
    folder = models.build_tiny_llama(vocabulary_texts(TofuData(tiny_folder)),
                                     tmp_path_factory.mktemp("statistics") / "tiny", seed=3)
    return models.load_model(str(folder))


def _plain(logits: torch.Tensor, targets: torch.Tensor) -> list[np.ndarray]:
    logp = torch.log_softmax(logits.double(), dim=-1)
    p = logp.exp()
    mu = (p * logp).sum(-1)
    sigma = (p * (logp - mu[:, None]) ** 2).sum(-1).clamp_min(ts.MINKPP_VARIANCE_FLOOR).sqrt()
    return [targets.numpy(), logp.gather(1, targets[:, None])[:, 0].numpy(), (logp.argmax(-1) == targets).numpy(),
            mu.numpy(), sigma.numpy()]


@pytest.mark.parametrize("rows_per_block", [1, 3, 64])
def test_blocks_give_the_values_of_one_pass(monkeypatch, rows_per_block):
    torch.manual_seed(0)
    vocab = 501
    monkeypatch.setattr(ts, "CPU_BLOCK_ELEMENTS", vocab * rows_per_block)
    logits, targets = torch.randn(37, vocab) * 4, torch.randint(0, vocab, (37,))
    logits[5] = 0.0  # a uniform row: μ = −log V, variance 0 (clamped)
    logits[6, targets[6]] = 60.0  # a near-deterministic row: variance clamped at the floor
    got, want = ts.token_statistics(logits, targets), _plain(logits, targets)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[2], want[2])
    for column in (1, 3, 4):
        np.testing.assert_allclose(got[column], want[column], atol=1e-5, rtol=0)
    assert got[4][6] == pytest.approx(ts.MINKPP_VARIANCE_FLOOR ** 0.5)


def test_head_applied_per_block_equals_logits_then_statistics(monkeypatch):
    torch.manual_seed(1)
    monkeypatch.setattr(ts, "CPU_BLOCK_ELEMENTS", 97 * 4)
    head = torch.nn.Linear(16, 97, bias=False)
    hidden, targets = torch.randn(23, 16), torch.randint(0, 97, (23,))
    with torch.no_grad():
        got, want = ts.token_statistics(hidden, targets, head), _plain(head(hidden), targets)
    for column in (1, 3, 4):
        np.testing.assert_allclose(got[column], want[column], atol=1e-5, rtol=0)
    assert np.array_equal(got[2], want[2])


def test_head_runs_once_per_chunk_of_several_blocks(monkeypatch):
    # the head weight is read once per chunk, not once per cache-sized statistics block
    torch.manual_seed(2)
    monkeypatch.setattr(ts, "CPU_BLOCK_ELEMENTS", 97 * 4)
    monkeypatch.setattr(ts, "CPU_HEAD_ELEMENTS", 97 * 9)   # 9 rows -> 8: a whole number of 4-row blocks
    assert ts.head_rows(97, torch.device("cpu")) == 8
    head = torch.nn.Linear(16, 97, bias=False)
    calls = []
    head.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    hidden, targets = torch.randn(23, 16), torch.randint(0, 97, (23,))
    moments = torch.rand(23) > 0.5
    with torch.no_grad():
        got, want = ts.token_statistics(hidden, targets, head, moments), _plain(head(hidden), targets)
    assert calls[:-1] == [8, 8, 7]  # the last call is the reference's own
    for column in (1, 3, 4):
        selected = moments.numpy() if column in (3, 4) else np.ones(23, dtype=bool)
        np.testing.assert_allclose(got[column][selected], want[column][selected], atol=1e-5, rtol=0)
    assert np.isnan(got[3][~moments.numpy()]).all()
    assert np.array_equal(got[2], want[2])


def test_no_labelled_positions_give_empty_columns():
    columns = ts.token_statistics(torch.zeros((0, 11)), torch.zeros(0, dtype=torch.long))
    assert [len(c) for c in columns] == [0] * 5


def _gemma2(vocab: int):
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(2)
    config = Gemma2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=16, final_logit_softcapping=5.0,
                          pad_token_id=0)
    return Gemma2ForCausalLM(config).eval()


def test_only_plain_heads_are_split(tiny_model):
    model, tokenizer, _ = tiny_model
    decoder, head = ts.split_head(model)
    assert decoder is model.get_decoder() and head is model.get_output_embeddings()
    model.edits_prompt_positions = True  # what GRUN edits mark on the model they attach to
    try:
        assert ts.split_head(model) is None  # GRUN edits inside its own forward
    finally:
        del model.edits_prompt_positions
    assert ts.split_head(_gemma2(len(tokenizer))) is None  # soft-capped logits: not head(hidden)


@pytest.mark.parametrize("soft_capped", [False, True])
def test_harness_scores_equal_the_model_logits(tiny_model, soft_capped):
    model, tokenizer, fmt = tiny_model
    if soft_capped:
        model = _gemma2(len(tokenizer))
    prompt = fmt.prompt("Who wrote the book?", tokenizer)
    pairs = [(prompt, "The author wrote it."), (prompt, "Nobody did."), ("Another question", "An answer here.")]
    harness = Harness(model, tokenizer, max_length=64, batch_size=2, progress=False)
    scores = dict(zip(pairs, harness.loglikelihood([Continuation(p, c) for p, c in pairs])))
    for prompt_text, continuation in pairs:
        encoded = encode_prompt_continuation(tokenizer, prompt_text, continuation, 64)
        with torch.no_grad():
            logits = model(input_ids=encoded["input_ids"][None]).logits[0, :-1]
        targets = encoded["labels"][1:]
        keep = targets != -100
        want = _plain(logits[keep], targets[keep])
        got = scores[(prompt_text, continuation)]
        np.testing.assert_allclose(got.logprobs, want[1], atol=1e-5, rtol=0)
        np.testing.assert_allclose(got.sigma, want[4], atol=1e-5, rtol=0)
        assert np.array_equal(got.hits, want[2])


def test_moments_only_for_selected_rows():
    torch.manual_seed(4)
    logits, targets = torch.randn(9, 50), torch.randint(0, 50, (9,))
    selected = torch.tensor([True, False, False, True, True, False, False, False, True])
    got, full = ts.token_statistics(logits, targets, moments=selected), ts.token_statistics(logits, targets)
    for column in (1, 2):
        assert np.array_equal(got[column], full[column])
    for column in (3, 4):
        np.testing.assert_array_equal(got[column][selected.numpy()], full[column][selected.numpy()])
        assert np.isnan(got[column][~selected.numpy()]).all()


def test_harness_skips_moments_unless_asked_and_adds_them_when_asked_later(tiny_model):
    model, tokenizer, fmt = tiny_model
    prompt = fmt.prompt("Who wrote the book?", tokenizer)
    truth, wrong = (prompt, "The author wrote it."), (prompt, "Nobody did.")
    score = lambda harness, *asked: dict(zip((truth, wrong), harness.loglikelihood(asked)))  # noqa: E731
    everything = score(Harness(model, tokenizer, max_length=64, progress=False), Continuation(*truth), Continuation(*wrong))
    harness = Harness(model, tokenizer, max_length=64, progress=False)
    first = score(harness, Continuation(*truth), Continuation(*wrong, moments=False))
    assert first[wrong].mu is None and first[wrong].sigma is None
    np.testing.assert_allclose(first[truth].sigma, everything[truth].sigma, atol=1e-5, rtol=0)
    np.testing.assert_allclose(first[wrong].logprobs, everything[wrong].logprobs, atol=1e-5, rtol=0)
    scored = harness.sequences_scored
    again = score(harness, Continuation(*truth), Continuation(*wrong))  # moments wanted now: `wrong` is rescored
    assert harness.sequences_scored == scored + 1
    np.testing.assert_allclose(again[wrong].mu, everything[wrong].mu, atol=1e-5, rtol=0)


def test_wrapped_models_keep_their_own_forward():
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    base = LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=2))
    assert ts.split_head(base) is not None
    wrapped = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"]))
    assert ts.split_head(wrapped) is None
