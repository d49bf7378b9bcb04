import dataclasses

import numpy as np
import pytest
import torch

from evaluation import generation_batch, models
from evaluation.benchmarks.tofu import evaluator as tofu_eval
from evaluation.benchmarks.tofu.data import TofuData
from evaluation.harness import Continuation, Harness
from evaluation.prompts import PHI
from evaluation.benchmarks.tofu.data import vocabulary_texts

QUICK = dataclasses.replace(tofu_eval.VARIANTS["full"], name="quick", encode_max_length=64, max_new_tokens=4)


@pytest.fixture(scope="module")
def tiny_model(tiny_folder, tmp_path_factory):
    torch.set_num_threads(1)
    folder = models.build_tiny_llama(vocabulary_texts(TofuData(tiny_folder)),
                                     tmp_path_factory.mktemp("m") / "tiny", seed=0)
    return models.load_model(str(folder))


def _count_model_calls(model):
    """Rows and calls of the model during scoring and during generation (prompt forwards: the
    harness decodes with `model.generate` or its own greedy loop, which calls the model directly).
    Scoring runs the decoder and applies the output head to labelled positions only, so scoring
    rows are counted on the decoder."""
    counts = {"score_rows": 0, "score_calls": 0, "generate_rows": 0, "generate_calls": 0}
    inside_generation = [False]
    decoder = model.get_decoder()
    forward, decoder_forward, harness_generate = model.forward, decoder.forward, Harness.generate_until

    def counting_decoder_forward(*args, **kwargs):
        if not inside_generation[0]:
            counts["score_rows"] += kwargs["input_ids"].shape[0]
            counts["score_calls"] += 1
        return decoder_forward(*args, **kwargs)

    def counting_forward(*args, **kwargs):
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        if inside_generation[0] and kwargs["input_ids"].shape[1] > 1 and (cache is None or cache.get_seq_length() == 0):
            counts["generate_rows"] += kwargs["input_ids"].shape[0]  # a batch of prompts
            counts["generate_calls"] += 1
        return forward(*args, **kwargs)

    def counting_harness_generate(self, requests):
        inside_generation[0] = True
        try:
            return harness_generate(self, requests)
        finally:
            inside_generation[0] = False

    model.forward, decoder.forward = counting_forward, counting_decoder_forward
    Harness.generate_until = counting_harness_generate

    def restore():
        Harness.generate_until = harness_generate
        model.forward, decoder.forward = forward, decoder_forward

    counts["restore"] = restore
    return counts


def test_one_scoring_and_one_generation_pass_for_all_metrics(tiny_folder, tiny_model):
    model, tokenizer, fmt = tiny_model
    data = TofuData(tiny_folder)
    counts = _count_model_calls(model)
    try:
        result, table, harness = tofu_eval.evaluate(model, tokenizer, fmt, data, "forget01", QUICK,
                                                    batch_size=16, progress=False)
    finally:
        counts["restore"]()
    rows = tofu_eval.eval_rows(data, "forget01", QUICK)
    unique_pairs, unique_prompts = set(), set()
    for name, items in rows.items():
        for row in items:
            prompt = fmt.prompt(row["question"])
            unique_pairs.add((prompt, row["answer"]))
            if name != "holdout":
                unique_prompts.add(prompt)
                unique_pairs.add((prompt, row["paraphrased_answer" if name in ("forget", "retain") else "answer"]))
                unique_pairs.update((prompt, w) for w in row["perturbed_answer"])
    # every unique pair is scored once; each prompt with several continuations runs its shared
    # prefix once more (one row), then every continuation only its own tokens
    prompts_of_pairs = [q for q, _ in unique_pairs]
    shared_prompts = {q for q in prompts_of_pairs if prompts_of_pairs.count(q) > 1}
    assert harness.sequences_scored == len(unique_pairs)
    assert counts["score_rows"] == len(unique_pairs) + len(shared_prompts)
    assert harness.positions_scored < harness.unique_tokens * 1.5
    assert harness.prompts_generated == len(unique_prompts) == counts["generate_rows"]
    batch_rows = harness.generation_batch_rows  # batches sized by memory: all 95 prompts fit one
    assert batch_rows == min(len(unique_prompts), generation_batch.MAX_ROWS)
    assert counts["generate_calls"] == -(-len(unique_prompts) // batch_rows)
    metric_names = set(result["metrics"])
    assert {"forget_prob", "forget_rouge", "forget_truth_ratio", "model_utility", "extraction_strength",
            "exact_memorization", "mia_loss_auc", "mia_zlib_auc", "mia_mink_auc", "mia_minkpp_auc",
            "privleak", "ra_prob", "wf_truth_ratio"} <= metric_names
    assert result["metrics"]["forget_quality"] is None and result["flags"]["privleak_reference_fallback"]
    assert set(table.eval_set) == {"forget", "retain", "ra", "wf", "holdout"}
    assert len(table) == sum(len(v) for v in rows.values())
    # asking again costs nothing: everything is cached
    rows_before = counts["score_rows"]
    harness.loglikelihood([Continuation(fmt.prompt(rows["forget"][0]["question"]), rows["forget"][0]["answer"])])
    assert counts["score_rows"] == rows_before


def test_cached_scores_equal_a_direct_forward(tiny_model):
    model, tokenizer, _ = tiny_model
    harness = Harness(model, tokenizer, max_length=64, batch_size=3, progress=False)
    pairs = [(PHI.prompt("Who wrote Emma?"), "Jane Austen"), (PHI.prompt("Who wrote Hamlet?"), "William Shakespeare"),
             (PHI.prompt("What is the capital of Peru?"), "Lima")]
    scores = dict(zip(pairs, harness.loglikelihood([Continuation(p, a) for p, a in pairs])))
    from evaluation.encoding import encode_qa

    for (prompt, answer), question in zip(pairs, ["Who wrote Emma?", "Who wrote Hamlet?", "What is the capital of Peru?"]):
        enc = encode_qa(tokenizer, PHI, question, answer, 64)
        with torch.no_grad():
            logits = model(input_ids=enc["input_ids"][None]).logits[0, :-1]
        labels = enc["labels"][1:]
        mask = labels != -100
        logp = torch.log_softmax(logits[mask], -1)
        expected = logp.gather(1, labels[mask][:, None])[:, 0].numpy()
        got = scores[(prompt, answer)]
        np.testing.assert_allclose(got.logprobs, expected, rtol=1e-4, atol=1e-5)
        assert got.mean_loss == pytest.approx(-expected.mean(), rel=1e-4)
        np.testing.assert_array_equal(got.hits, (logp.argmax(-1) == labels[mask]).numpy())
        p = logp.exp()
        mu = (p * logp).sum(-1)
        np.testing.assert_allclose(got.mu, mu.numpy(), rtol=1e-4, atol=1e-5)


def test_legacy_variant_caps_rows_and_drops_answer_tag(tiny_folder):
    legacy = tofu_eval.VARIANTS["legacy"]
    assert legacy.item_cap == 300 and legacy.gen_max_length == 200 and legacy.max_new_tokens is None
    rows = tofu_eval.eval_rows(TofuData(tiny_folder), "forget10", legacy)
    requests = tofu_eval.build_requests(rows, PHI, None, legacy)
    assert all(p.endswith("\n") and "Answer: " not in p for p in requests.prompts)
    full = tofu_eval.build_requests(rows, PHI, None, tofu_eval.VARIANTS["full"])
    assert all(p.endswith("Answer: ") for p in full.prompts)


@pytest.mark.shared_data
def test_legacy_cap_on_real_tofu(shared_tofu):
    rows = tofu_eval.eval_rows(TofuData(shared_tofu), "forget10", tofu_eval.VARIANTS["legacy"])
    assert len(rows["forget"]) == 300 and len(rows["retain"]) == 300 and len(rows["wf"]) == 117
    rows = tofu_eval.eval_rows(TofuData(shared_tofu), "forget10", tofu_eval.VARIANTS["full"])
    assert len(rows["forget"]) == 400 and len(rows["holdout"]) == 400


def test_retain_model_is_its_own_reference(tiny_folder, tiny_model):
    model, tokenizer, fmt = tiny_model
    result, _, _ = tofu_eval.evaluate(model, tokenizer, fmt, TofuData(tiny_folder), "forget01", QUICK,
                                      batch_size=16, progress=False, is_retain_model=True)
    assert result["metrics"]["forget_quality"] == pytest.approx(1.0)
    assert result["metrics"]["privleak"] == pytest.approx(0.0, abs=1e-6)
    assert not result["flags"]["privleak_reference_fallback"]
    assert result["metric_details"]["forget_quality"]["retain_reference"].startswith("self")


def test_memorization_and_mink_token_convention_is_a_recorded_switch(tiny_folder, tiny_model):
    """OU (full): ES, EM, Min-K, Min-K++ over the answer without EOS; ours: with the EOS position."""
    model, tokenizer, fmt = tiny_model
    data = TofuData(tiny_folder)
    ours = dataclasses.replace(QUICK, memorization_mia_include_eos=True)
    result_ou, table_ou, harness = tofu_eval.evaluate(model, tokenizer, fmt, data, "forget01", QUICK,
                                                      batch_size=16, progress=False)
    result_ours, table_ours, _ = tofu_eval.evaluate(model, tokenizer, fmt, data, "forget01", ours,
                                                    batch_size=16, progress=False)
    assert tofu_eval.VARIANTS["full"].memorization_mia_include_eos is False
    assert result_ou["evaluator"]["memorization_mia_tokens"] == "answer without EOS (OU)"
    assert result_ours["evaluator"]["memorization_mia_tokens"] == "answer + EOS (ours)"
    row = tofu_eval.eval_rows(data, "forget01", QUICK)["forget"][0]
    scores = harness.loglikelihood([Continuation(fmt.prompt(row["question"]), row["answer"])])[0]  # cached
    from evaluation.metrics import memorization
    first = table_ou[table_ou.eval_set == "forget"].sort_values("item_index").iloc[0]
    assert first["exact_memorization"] == pytest.approx(memorization.exact_memorization(scores.hits[:-1]))
    first_ours = table_ours[table_ours.eval_set == "forget"].sort_values("item_index").iloc[0]
    assert first_ours["exact_memorization"] == pytest.approx(memorization.exact_memorization(scores.hits))
    # the probability (and LOSS attack) keep the EOS position in both
    assert first["gt_loss_mean"] == first_ours["gt_loss_mean"] == pytest.approx(scores.mean_loss)
    assert first["mia_loss"] == pytest.approx(scores.mean_loss)


def test_retain_reference_from_another_variant_is_refused(tiny_folder, tiny_model, tmp_path):
    import json

    model, tokenizer, fmt = tiny_model
    data = TofuData(tiny_folder)
    result, table, _ = tofu_eval.evaluate(model, tokenizer, fmt, data, "forget01", QUICK,
                                          batch_size=16, progress=False, is_retain_model=True)
    table.to_parquet(tmp_path / "per_item.parquet", index=False)
    (tmp_path / "metrics.json").write_text(json.dumps({"evaluator": result["evaluator"]}))
    reference = tofu_eval.RetainReference.load(tmp_path)
    same, _, _ = tofu_eval.evaluate(model, tokenizer, fmt, data, "forget01", QUICK, reference,
                                    batch_size=16, progress=False)
    assert same["metrics"]["forget_quality"] == pytest.approx(1.0)
    other = dataclasses.replace(QUICK, memorization_mia_include_eos=True)
    with pytest.raises(ValueError, match="memorization_mia_include_eos"):
        tofu_eval.evaluate(model, tokenizer, fmt, data, "forget01", other, reference, batch_size=16, progress=False)
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match="no `evaluator` block"):
        tofu_eval.RetainReference.load(tmp_path)


def test_cli_summary_says_why_forget_quality_is_missing():
    from evaluation.cli import summary_metrics

    shown = summary_metrics({"forget_quality": None, "model_utility": 0.5, "exact_memorization": None})
    assert shown == {"forget_quality": "n/a (no retain reference)", "model_utility": 0.5}
    assert summary_metrics({"forget_quality": 0.2})["forget_quality"] == 0.2


def test_retain_reference_without_a_label_span_field_meant_offsets():
    """Reference folders written before `label_span` was recorded were scored by character offsets:
    they still serve `full`, and are refused (naming the field) by a prompt-length variant."""
    import pandas as pd

    block = {**dataclasses.asdict(tofu_eval.VARIANTS["full"]), "variant": "full", "prompt_template": {"name": "phi"}}
    old = {k: v for k, v in block.items() if k != "label_span"}
    reference = tofu_eval.RetainReference(pd.DataFrame(), "old-folder", old)
    reference.check_evaluator(block)
    prompt_length = {**block, "label_span": "prompt_length"}
    with pytest.raises(ValueError, match="label_span: reference 'offsets' vs this run 'prompt_length'"):
        reference.check_evaluator(prompt_length)
