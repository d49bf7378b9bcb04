"""The harness's request kinds: each agrees with a plain forward / decode of the same tokens."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluation import models
from evaluation.benchmarks.tofu.data import TofuData, vocabulary_texts
from evaluation.harness import Continuation, Generation, Harness, NextToken, Rolling

PROMPTS = ["Question: Who wrote Emma?\nAnswer:", "Question: What is the capital of Peru?\nAnswer:", "Question:"]


@pytest.fixture(scope="module")
def tiny(tiny_folder, tmp_path_factory):
    torch.set_num_threads(1)
    folder = models.build_tiny_llama(vocabulary_texts(TofuData(tiny_folder)),
                                     tmp_path_factory.mktemp("requests") / "m", seed=2)
    model, tokenizer, _ = models.load_model(str(folder))
    return model, tokenizer


def _last_logprobs(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, -1].float(), -1)


def test_next_token_candidates_equal_the_unpadded_forward(tiny):
    model, tokenizer = tiny
    candidates = tuple(tokenizer.encode(w, add_special_tokens=False)[-1] for w in ("Jane", "Lima", "the"))
    scores = Harness(model, tokenizer, progress=False).loglikelihood([NextToken(p, candidates) for p in PROMPTS])
    for prompt, score in zip(PROMPTS, scores):
        expected = _last_logprobs(model, tokenizer(prompt)["input_ids"])
        assert tuple(score.target_ids) == candidates
        np.testing.assert_allclose(score.logprobs, expected[list(candidates)].numpy(), atol=1e-5, rtol=0)
        assert list(score.hits) == [int(expected.argmax()) == c for c in candidates]


def test_rolling_text_scores_every_token_after_bos_and_equals_its_token_ids(tiny):
    model, tokenizer = tiny
    text = "Jane Austen wrote Emma in Lima."
    ids = tokenizer(text)["input_ids"]
    by_text, by_ids = Harness(model, tokenizer, progress=False).loglikelihood([Rolling(text), Rolling(ids)])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, :-1], -1)
    expected = logp.gather(1, torch.tensor(ids[1:])[:, None])[:, 0].numpy()
    np.testing.assert_allclose(by_text.logprobs, expected, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(by_text.logprobs, by_ids.logprobs)
    assert by_text.mu is not None and by_text.num_tokens == len(ids) - 1


def test_token_id_continuation_labels_only_the_continuation(tiny):
    model, tokenizer = tiny
    context, answer = tuple(tokenizer(PROMPTS[0])["input_ids"]), (5, 6, 7)
    rolling, continuation = Harness(model, tokenizer, progress=False).loglikelihood(
        [Rolling(context + answer), Continuation(context, answer)])
    np.testing.assert_allclose(continuation.logprobs, rolling.logprobs[-len(answer):], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="non-empty context"):
        Harness(model, tokenizer, progress=False).loglikelihood([Continuation((), answer)])


def test_generation_stops_cut_or_decode_the_stop_token_and_cut_stop_strings(tiny):
    model, tokenizer = tiny
    harness = Harness(model, tokenizer, progress=False)
    plain = Harness(model, tokenizer, progress=False)
    free = plain.generate_until([Generation(PROMPTS[0], 6)])[0]
    first = tokenizer(free, add_special_tokens=False)["input_ids"][0]  # the first generated word, a plain token
    ids = tokenizer(PROMPTS[0])["input_ids"]
    cut, kept, as_ids, by_string = harness.generate_until([
        Generation(PROMPTS[0], 6, stop_ids=(first,)),
        Generation(PROMPTS[0], 6, stop_ids=(first,), decode_stop_token=True),
        Generation(ids, 6, stop_ids=(first,), decode_stop_token=True),
        Generation(PROMPTS[0], 6, stop_strings=(free[-2:],))])
    assert cut == "" and kept.strip() == tokenizer.decode([first]).strip() and as_ids == kept
    assert by_string == free[:free.index(free[-2:])]
    generated = harness.prompts_generated
    assert harness.generate_until([Generation(ids, 6, stop_ids=(first,), decode_stop_token=True)]) == [kept]
    assert harness.prompts_generated == generated  # cached


def test_a_call_mixing_budgets_equals_one_call_per_budget(tiny):
    model, tokenizer = tiny
    requests = [Generation(p, n) for n in (3, 7) for p in PROMPTS]
    together = Harness(model, tokenizer, progress=False).generate_until(requests)
    apart = Harness(model, tokenizer, progress=False)
    assert together == apart.generate_until(requests[:3]) + apart.generate_until(requests[3:])
