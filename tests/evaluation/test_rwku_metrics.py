"""RWKU metric functions, prompts and stop-id lookup (metrics.md §4)."""
import math

import pytest

from evaluation.benchmarks.rwku import evaluator, prompts
from evaluation.benchmarks.rwku import metrics as m


def test_rouge_packages_differ_where_documented():
    # `rouge` (official) does not stem; rouge_score with stemming (SAGO) matches "writes" to "write"
    assert m.rouge_l_recall_official("she writes novels", "write novels") == pytest.approx(0.5)
    assert m.rouge_l_recall_stemmed("she writes novels", "write novels") == pytest.approx(1.0)
    assert m.official_prediction("   ") == "NOANSWER"
    assert m.rouge_l_recall_official(m.official_prediction(""), "Stephen King") == 0.0
    assert m.rouge_l_recall_official(". . .", "Stephen King") == 0.0   # `rouge` itself raises here


def test_mia_set_means_follow_the_official_signs():
    logprobs, mu, sigma = [-1.0, -2.0, -3.0, -4.0, -5.0], [-1.0] * 5, [1.0] * 5
    assert m.mia_loss(logprobs) == -3.0                       # LL = −loss: higher = member-like
    assert m.mia_minkpp(logprobs, mu, sigma) == -4.0          # lowest ⌊0.2·5⌋ = 1 z-score
    assert math.isnan(m.mia_minkpp(logprobs[:4], mu[:4], sigma[:4]))  # ⌊0.8⌋ = 0: no value
    assert m.set_mean([1.0, float("nan"), 3.0]) == 2.0


def test_qa_normalisation_and_bbh():
    assert m.exact_match("The Eiffel Tower!", ["eiffel tower"]) == 1.0
    assert m.token_f1("Paris France", ["Paris"]) == pytest.approx(2 / 3)
    assert m.bbh_prediction("Let us see. So the answer is False. Done") == "False"
    assert m.exact_match("False", ["False"]) == 1.0
    assert m.bbh_exact_match_official_quirk("False", "False") == 0.0    # official: max over characters
    assert m.bbh_exact_match_official_quirk("(A)", "(A)") == 1.0


def test_truthfulqa_and_fluency():
    assert m.truthfulqa_mc1([-1.0, -9.0], [-2.0]) == 1.0
    assert m.truthfulqa_mc2([0.0], [0.0]) == pytest.approx(0.5)
    tokens = "a b a b".split()   # bigrams ab, ba, ab; trigrams aba, bab
    h2 = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    assert m.ngram_entropy(tokens) == pytest.approx((2 / 3 * h2 + 4 / 3 * 1.0) / 2)
    assert m.ngram_entropy([]) == 0.0


class _Chat:
    chat_template = "x"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        return "<s>[U]" + messages[0]["content"] + "[A]"


def test_probe_prompts_official_and_sago():
    tok = _Chat()
    assert prompts.official_probe_prompt(tok, 1, "cloze", "X is ___.") == (
        "<s>[U]Please complete the blank in the following question.\nQuestion: X is ___.\n[A]Answer:")
    assert prompts.official_probe_prompt(tok, 3, "affirmative suffix", "Q? Sure:") == (
        "<s>[U]Please briefly answer the following question.\nQuestion: Q? Sure:[A]")
    assert prompts.official_probe_prompt(tok, 3, "incontext learning", "Q1") == (
        "<s>[U]Please briefly answer the following question.\nQ1\n[A]Answer:")
    assert prompts.sago_probe_prompt(tok, 2, "simple question", "Q?") == (
        "<s>[U]Please briefly answer the following question.\nQuestion: Q?\nAnswer:[A]")
    assert prompts.sago_probe_prompt(tok, 3, "affirmative suffix", "Q?") == (
        "<s>[U]Please briefly answer the following question.\nQuestion: Q?\n[A]")


def test_prompts_need_a_chat_template():
    class Plain:
        chat_template = None
    with pytest.raises(ValueError, match="chat template"):
        prompts.chat(Plain(), "hi")


def test_official_stop_ids_byte_level_vs_word_level():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from evaluation.models import train_word_tokenizer

    word = train_word_tokenizer(["hello world"])
    resolved = evaluator.official_stop_ids(word)
    assert resolved == {"<|eot_id|>": word.unk_token_id, " \n": word.unk_token_id, "\n": word.unk_token_id}

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.train_from_iterator(["hello\nworld \n again"], trainers.BpeTrainer(
        special_tokens=["<|eot_id|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    byte_level = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|eot_id|>")
    resolved = evaluator.official_stop_ids(byte_level)
    assert resolved[" \n"] is None and resolved["\n"] is None   # newline is "Ċ" in the vocabulary
    assert resolved["<|eot_id|>"] == byte_level.eos_token_id


def test_tiny_chat_template_renders_like_the_training_text():
    from evaluation.models import train_word_tokenizer

    tok = train_word_tokenizer(["User: Assistant: hi"])
    tok.chat_template = prompts.TINY_CHAT_TEMPLATE
    assert prompts.chat(tok, "hi there") == prompts.render_tiny_chat("hi there", bos=tok.bos_token)


def test_truthfulqa_primer_matches_lm_eval():
    lm_eval_tasks = pytest.importorskip("lm_eval.tasks")
    from pathlib import Path

    text = (Path(lm_eval_tasks.__file__).parent / "truthfulqa" / "truthfulqa_mc1.yaml").read_text()
    for line in prompts.TRUTHFULQA_QA_PRIMER.split("\n"):
        assert line.replace("'", "''") in text
