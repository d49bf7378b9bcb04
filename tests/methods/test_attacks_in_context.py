"""prompt/in-context: k forget pairs of other items before the question, on a byte-level BPE
tokenizer trained here: the demonstrations are in the prompt tokens, the labels cover only the
answer, and an item's own answer never appears among its demonstrations."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from evaluation.benchmarks.base import QA, TEXT, Corpus
from evaluation.encoding import IGNORE_INDEX, encode_prompt_continuation, encode_qa
from evaluation.prompts import LLAMA3_CHAT, PHI
from methods.attacks import prompt
from methods.attacks.base import AttackContext
from methods.registry import ATTACKS
from tests.evaluation.test_tokenizer_families import byte_level_bpe

PAIRS = [(f"What did author {name} write in {year}?", f"{name} wrote {book} in {year}.")
         for name, book, year in [("Amara", "Tides", 1950), ("Jon", "Lagos Nights", 1961), ("Emma", "Frost", 1972),
                                  ("Ilse", "Harbour", 1983), ("Kofi", "Dust", 1994), ("Mira", "Salt", 2005),
                                  ("Teo", "Embers", 2016)]]
# a pair whose text holds another item's answer: never a demonstration for that item
ECHO = ("Which sentence opens the Amara review?", "Amara wrote Tides in 1950. It begins so.")


def _context(pairs, kind=QA):
    bench = SimpleNamespace(name="stub", unlearning_corpora=lambda data, split: {
        "forget": Corpus(kind, tuple(pairs), "stub forget")})
    return AttackContext(benchmark=bench, data=None, split="forget10", tokenizer=None, prompt_format=None)


@pytest.fixture(scope="module")
def tokenizer():
    corpus = [text for pair in PAIRS + [ECHO] for text in pair] * 20 + ["Question: Answer:", "assistant user"]
    return byte_level_bpe(True, corpus, vocab_size=500)


def _format(fmt=PHI, pairs=PAIRS + [ECHO], **args):
    return ATTACKS.get("prompt")("in-context", **args).prompt_format(fmt, _context(pairs))


def test_demonstrations_are_prompt_tokens_and_labels_cover_only_the_answer(tokenizer):
    fmt = _format()
    for question, answer in PAIRS:
        shown = fmt.shots.for_question(question)
        text = fmt.prompt(question, tokenizer)
        assert len(shown) == 3 and text.endswith(PHI.prompt(question))
        assert all(PHI.prompt(q) + a + "\n\n" in text for q, a in shown)
        assert answer not in text and question not in {q for q, _ in shown}
        encoded = encode_prompt_continuation(tokenizer, text, answer, 512)
        labels = encoded["labels"]
        first = int((labels != IGNORE_INDEX).nonzero()[0])
        assert (labels[first:] != IGNORE_INDEX).all() and int(labels[-1]) == tokenizer.eos_token_id
        assert tokenizer.decode(labels[first:-1]).strip() == answer
        prompt_tokens = tokenizer.decode(encoded["input_ids"][:first], skip_special_tokens=True)
        assert all(a in prompt_tokens for _, a in shown)  # the demonstrations' answers are unlabelled context
        assert encode_qa(tokenizer, fmt, question, answer, 512)["labels"].tolist() == labels.tolist()


def test_a_pair_holding_the_items_answer_is_never_shown():
    amara_question, amara_answer = PAIRS[0]
    fmt = _format(k=6)  # 7 pairs besides the item's own; one of them (ECHO) quotes its answer
    assert ECHO not in fmt.shots.for_question(amara_question)
    assert amara_answer not in fmt.prompt(amara_question)
    with pytest.raises(ValueError, match=r"only 6 forget pairs besides the item's own .* lower `k` \(now 7\)"):
        _format(k=7).prompt(amara_question)


def test_the_draw_is_seeded_per_question_and_recorded():
    first, again, other = _format(), _format(), _format(seed=1)
    questions = [q for q, _ in PAIRS]
    assert [first.shots.for_question(q) for q in questions] == [again.shots.for_question(q) for q in questions]
    assert [first.shots.for_question(q) for q in questions] != [other.shots.for_question(q) for q in questions]
    assert len({first.shots.for_question(q) for q in questions}) > 1  # not one fixed set for every item
    attack = ATTACKS.get("prompt")("in-context", k=2, seed=5)
    assert attack.parameters() == {"name": "prompt", "variant": "in-context", "args": {"k": 2, "seed": 5}}
    assert attack.label == "prompt-in-context" and first.name == "phi+in-context"
    assert first.as_record()["demonstrations"] == {"k": 3, "seed": 0, "pool": len(PAIRS) + 1}


def test_a_chat_format_shows_the_demonstrations_inside_one_user_turn(tokenizer):
    fmt = _format(LLAMA3_CHAT)
    question = PAIRS[2][0]
    text = fmt.prompt(question, tokenizer)
    assert text.count(tokenizer.bos_token) == 1 and text.count("<|start_header_id|>user") == 1
    assert all(prompt.CHAT_DEMONSTRATION.format(q, a) in text for q, a in fmt.shots.for_question(question))


def test_bad_arguments_and_raw_text_forget_sets_are_refused():
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        ATTACKS.get("prompt")("in-context", k=0)
    with pytest.raises(ValueError, match=r"accepted: \['k', 'seed'\]"):
        ATTACKS.get("prompt")("in-context", prefix="Sure")
    with pytest.raises(ValueError, match="forgets raw text"):
        ATTACKS.get("prompt")("in-context").prompt_format(PHI, _context(["a text", "another"], TEXT))
    with pytest.raises(ValueError, match="needs the run's benchmark data"):
        ATTACKS.get("prompt")("in-context").prompt_format(PHI)
    assert ATTACKS.get("prompt")("prefix").prompt_format(PHI).prompt("Who?").endswith("Sure, here is the answer: ")
