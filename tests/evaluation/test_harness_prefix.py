"""Scoring each prompt once (cached prefix, continuations against it) gives per-sequence values."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluation import models
from evaluation.benchmarks.tofu import evaluator as tofu_eval
from evaluation.benchmarks.tofu.data import TofuData
from evaluation.harness import Continuation, Harness, Rolling, shared_prefix_groups
from evaluation.encoding import encode_prompt_continuation
from evaluation.benchmarks.tofu.data import vocabulary_texts


@pytest.fixture(scope="module")
def tiny(tiny_folder, tmp_path_factory):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    folder = models.build_tiny_llama(vocabulary_texts(TofuData(tiny_folder)),
                                     tmp_path_factory.mktemp("prefix") / "m", seed=1)
    return models.load_model(str(folder))


def _pairs(tiny_folder, tokenizer, fmt):
    variant = tofu_eval.VARIANTS["full"]
    rows = tofu_eval.eval_rows(TofuData(tiny_folder), "forget01", variant)
    return tofu_eval.build_requests(rows, fmt, tokenizer, variant).pairs


@pytest.mark.parametrize("batch_size", [3, 32])
def test_shared_prefix_scores_equal_per_sequence_scores(tiny_folder, tiny, batch_size):
    model, tokenizer, fmt = tiny
    pairs = _pairs(tiny_folder, tokenizer, fmt)
    plain = Harness(model, tokenizer, max_length=64, batch_size=batch_size, share_prefixes=False, progress=False)
    shared = Harness(model, tokenizer, max_length=64, batch_size=batch_size, share_prefixes=True, progress=False)
    requests = [Continuation(q, c) for q, c in pairs]
    a, b = (dict(zip(pairs, harness.loglikelihood(requests))) for harness in (plain, shared))
    for key in pairs:
        for field in ("target_ids", "hits"):
            assert np.array_equal(getattr(a[key], field), getattr(b[key], field)), (key, field)
        for field in ("logprobs", "mu", "sigma"):
            np.testing.assert_allclose(getattr(a[key], field), getattr(b[key], field), atol=1e-5, rtol=0)
    assert shared.positions_scored < 0.6 * plain.positions_scored  # 7-8 continuations share each prompt
    assert shared.unique_tokens == plain.unique_tokens - sum(
        (len(m) - 1) * p for p, m in shared_prefix_groups([q for q, _ in dict.fromkeys(pairs)], [
            encode_prompt_continuation(tokenizer, q, c, 64) for q, c in dict.fromkeys(pairs)]))
    assert shared.positions_scored >= shared.unique_tokens


def test_prefix_stops_before_the_first_labelled_token(tiny_folder, tiny):
    model, tokenizer, fmt = tiny
    prompt = fmt.prompt("Who wrote Emma?", tokenizer)
    keys = [(prompt, "Jane Austen"), (prompt, "Jane Eyre"), ("other", "x")]
    encoded = [encode_prompt_continuation(tokenizer, p, c, 64) for p, c in keys]
    groups = dict((tuple(m), length) for length, m in shared_prefix_groups([p for p, _ in keys], encoded))
    first = int((encoded[0]["labels"] != -100).nonzero()[0])
    assert groups[(0, 1)] == first  # "Jane" is labelled: the shared prefix ends before it
    assert groups[(2,)] >= 0


def test_token_id_continuations_share_their_context_and_rolling_sequences_never_do(tiny):
    """Continuations given as token ids group by their context like text ones; rolling sequences
    (all starting at BOS) each run on their own, with per-sequence values either way."""
    model, tokenizer, fmt = tiny
    context = tuple(tokenizer(fmt.prompt("Who wrote Emma?", tokenizer))["input_ids"])
    answers = [tuple(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in ("Jane Austen", "Jane Eyre")]
    requests = [Continuation(context, a) for a in answers] + [Rolling(context + a) for a in answers]
    plain = Harness(model, tokenizer, share_prefixes=False, progress=False).loglikelihood(requests)
    harness = Harness(model, tokenizer, progress=False)
    shared = harness.loglikelihood(requests)
    for x, y in zip(plain, shared):
        assert np.array_equal(x.target_ids, y.target_ids)
        np.testing.assert_allclose(x.logprobs, y.logprobs, atol=1e-5, rtol=0)
    assert [s.num_tokens for s in shared] == [len(a) for a in answers] + [len(context) + len(a) - 1 for a in answers]
    encoded = [harness._encode(r) for r in requests]
    groups = shared_prefix_groups([context, context, None, None], encoded)
    assert sorted(len(members) for _, members in groups) == [1, 1, 2]


def test_grun_models_are_scored_on_full_sequences(tiny):
    model, tokenizer, _ = tiny
    harness = Harness(model, tokenizer, progress=False)
    assert harness._can_share_prefixes()
    model.edits_prompt_positions = True  # what GRUN edits mark on the model (load_grun_model)
    try:
        assert not harness._can_share_prefixes()
    finally:
        del model.edits_prompt_positions
