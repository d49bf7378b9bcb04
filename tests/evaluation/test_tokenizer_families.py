"""Answer labels are exact for every tokenizer family: locally trained byte-level BPE (with and
without prefix space, GPT-2 / Phi / Llama-3 style), SentencePiece-style Metaspace BPE (Llama-2) and
the word-level tokenizer of the tiny model, under every prompt format."""
import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models as tok_models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from evaluation import models
from evaluation.benchmarks.tofu import evaluator as tofu_eval
from evaluation.encoding import (IGNORE_INDEX, LABEL_AFTER_QUESTION, SPAN_PROMPT_LENGTH, encode_prompt_continuation,
                                 encode_qa, label_start)
from evaluation.harness import Harness
from evaluation.prompts import FORMATS, PHI
from evaluation.benchmarks.tofu.data import vocabulary_texts

QA = [("Where and when was Amara Lisbon born?", "Oslo, Norway, in 1950."),
      ("What genre does Jon Kell write?", "He writes crime fiction set in Lagos."),
      ("Who wrote Emma?", "Jane Austen wrote it.")]
CORPUS = [text for pair in QA for text in pair] * 20 + [
    "Question: Answer:", "[INST] [/INST]", "assistant user system", "You are a helpful assistant.",
    "the of and to a in is was for on", "Norway Lagos Oslo Emma Jane Austen crime fiction genre"]
CHAT_SPECIALS = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
# Llama-3-style template; the prompt format renders it with a system prompt and the generation prompt
CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
                 "{{ m['content'] }}<|eot_id|>{% endfor %}"
                 "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")


def _wrap(backend, bos="<s>", eos="</s>", add_bos=True) -> PreTrainedTokenizerFast:
    if add_bos:
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", special_tokens=[(bos, backend.token_to_id(bos))])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token=eos, pad_token=eos,
                                  additional_special_tokens=CHAT_SPECIALS)
    tok.chat_template = CHAT_TEMPLATE
    return tok


def byte_level_bpe(prefix_space: bool, corpus: list[str] = CORPUS, vocab_size: int = 400) -> PreTrainedTokenizerFast:
    backend = Tokenizer(tok_models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space)
    backend.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", *CHAT_SPECIALS]
    backend.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    # GPT-2 / Phi add no BOS; the prefix-space one stands for Llama-3 (which does)
    return _wrap(backend, add_bos=prefix_space)


def metaspace_bpe() -> PreTrainedTokenizerFast:
    backend = Tokenizer(tok_models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    specials = ["<unk>", "<s>", "</s>", *CHAT_SPECIALS]
    backend.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=specials))
    return _wrap(backend)


def word_level() -> PreTrainedTokenizerFast:
    tok = models.train_word_tokenizer(CORPUS + CHAT_SPECIALS)
    tok.add_special_tokens({"additional_special_tokens": CHAT_SPECIALS})
    tok.chat_template = CHAT_TEMPLATE
    return tok


@pytest.fixture(scope="session")
def tokenizers():
    return {"bpe-byte": byte_level_bpe(False), "bpe-byte-prefix-space": byte_level_bpe(True),
            "metaspace": metaspace_bpe(), "word": word_level()}


FAMILIES = ["bpe-byte", "bpe-byte-prefix-space", "metaspace", "word"]


def _labelled_text(tok, enc) -> tuple[list[int], str]:
    labelled = enc["labels"][enc["labels"] != IGNORE_INDEX].tolist()
    return labelled, tok.decode(labelled[:-1])


def _expected(tok, family: str, text: str) -> str:
    # the word-level tokenizer decodes with spaces between words: compare with the text's own decoding
    return tok.decode(tok(text, add_special_tokens=False)["input_ids"]).strip() if family == "word" else text


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("fmt_name", sorted(FORMATS))
def test_labels_decode_to_exactly_the_answer_and_eos(tokenizers, family, fmt_name):
    tok, fmt = tokenizers[family], FORMATS[fmt_name]
    for question, answer in QA:
        enc = encode_qa(tok, fmt, question, answer, 256)
        labelled, text = _labelled_text(tok, enc)
        assert labelled[-1] == tok.eos_token_id
        assert text.strip() == _expected(tok, family, answer), (family, fmt_name, text)
        # every token before the first label is prompt: the prompt decodes back without any answer text
        first = int((enc["labels"] != IGNORE_INDEX).nonzero()[0])
        prompt_text = tok.decode(enc["input_ids"][:first], skip_special_tokens=True)
        assert answer.split()[0].rstrip(",.") not in prompt_text.split()[-1:]
        assert (enc["labels"][first:] != IGNORE_INDEX).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_legacy_labelling_covers_phi_answer_tag(tokenizers, family):
    tok = tokenizers[family]
    for question, answer in QA:
        enc = encode_qa(tok, PHI, question, answer, 256, labels_from=LABEL_AFTER_QUESTION)
        labelled, text = _labelled_text(tok, enc)
        assert text.strip() == _expected(tok, family, "Answer: " + answer)
        tag = enc["prefix_labels"]  # the tag's tokens, which answer-only metrics skip
        assert tok.decode(labelled[:tag]).strip() == _expected(tok, family, "Answer:")
        assert tok.decode(labelled[tag:-1]).strip() == _expected(tok, family, answer)


def test_byte_level_first_answer_token_merges_with_the_prompt_space(tokenizers):
    """The case counting prompt tokens gets wrong: "Answer: " alone ends in a lone space token."""
    tok = tokenizers["bpe-byte"]
    prompt = PHI.prompt(QA[0][0])
    alone = tok(prompt)["input_ids"]
    full = tok(prompt + QA[0][1])["input_ids"]
    assert full[:len(alone)] != alone  # the prompt's last token is not a prefix of the full text's
    enc = encode_qa(tok, PHI, *QA[0], 256)
    assert int((enc["labels"] != IGNORE_INDEX).sum()) == len(full) - len(alone) + 2  # merged word + EOS


def test_truncation_keeps_labels_on_the_answer_prefix(tokenizers):
    tok = tokenizers["bpe-byte"]
    full = encode_qa(tok, PHI, *QA[1], 256)
    cut = encode_qa(tok, PHI, *QA[1], len(full["input_ids"]) - 2)
    assert cut["eos_kept"] is False and full["eos_kept"] is True
    assert cut["labels"].tolist() == full["labels"][:len(cut["labels"])].tolist()


def test_slow_tokenizer_is_refused_clearly(tokenizers):
    class Slow:
        is_fast, eos_token_id, bos_token = False, 2, "<s>"

    with pytest.raises(TypeError, match="offsets"):
        encode_qa(Slow(), PHI, "q", "a", 16)


def test_generation_stops_on_every_model_eos_id(tokenizers):
    tok = tokenizers["bpe-byte"]

    class Model:
        class generation_config:
            eos_token_id = [7, 9, tok.eos_token_id]

    harness = Harness(Model(), tok)
    assert harness.stop_ids() == [7, 9, tok.eos_token_id]
    Model.generation_config.eos_token_id = 5
    assert Harness(Model(), tok).stop_ids() == [5, tok.eos_token_id]


# ---- the prompt-length label span (open-unlearning, TOFU) ------------------------------------------

def _ou_labels(tok, fmt, question: str, answer: str) -> list[int]:
    """open-unlearning's preprocess_chat_instance restated: labels = [-100] * len(prompt_ids) +
    chat_ids[len(prompt_ids):], EOS appended (our chat formats render their template as text)."""
    prompt = fmt.prompt(question, tok)
    special = not prompt.startswith(tok.bos_token)
    chat_ids = tok(prompt + answer, add_special_tokens=special)["input_ids"] + [tok.eos_token_id]
    prompt_ids = tok(prompt, add_special_tokens=special)["input_ids"]
    return [IGNORE_INDEX] * len(prompt_ids) + chat_ids[len(prompt_ids):]


def _encode(tok, fmt, question, answer, span, labels_from="answer"):
    prompt = fmt.prompt(question, tok)
    return encode_prompt_continuation(tok, prompt, answer, 256, label_span=span,
                                      label_start=label_start(fmt, prompt, labels_from))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("fmt_name", sorted(FORMATS))
def test_prompt_length_span_labels_exactly_what_open_unlearning_labels(tokenizers, family, fmt_name):
    tok, fmt = tokenizers[family], FORMATS[fmt_name]
    for question, answer in QA:
        enc = _encode(tok, fmt, question, answer, SPAN_PROMPT_LENGTH)
        assert enc["labels"].tolist() == _ou_labels(tok, fmt, question, answer), (family, fmt_name)
        assert enc["input_ids"].tolist() == encode_qa(tok, fmt, question, answer, 256)["input_ids"].tolist()


@pytest.mark.parametrize("family, merging", [("bpe-byte", True), ("bpe-byte-prefix-space", True),
                                             ("metaspace", True), ("word", False)])
def test_prompt_length_span_misses_the_merged_first_answer_token(tokenizers, family, merging):
    """Plain tags ("...Answer: "): in byte-level BPE and SentencePiece the prompt's trailing space
    merges into the first answer word whenever the vocabulary holds the merged token, so OU's rule
    never labels that word; the tiny word-level tokenizer (where OU and we agreed to 1e-6) never
    merges."""
    tok = tokenizers[family]
    merged_words = []
    for question, answer in QA:
        prompt = PHI.prompt(question)
        alone, full = tok(prompt)["input_ids"], tok(prompt + answer)["input_ids"]
        merges = full[:len(alone)] != alone
        ours = encode_qa(tok, PHI, question, answer, 256)["labels"]
        theirs = _encode(tok, PHI, question, answer, SPAN_PROMPT_LENGTH)["labels"]
        n_ours, n_theirs = int((ours != IGNORE_INDEX).sum()), int((theirs != IGNORE_INDEX).sum())
        assert n_ours - n_theirs == int(merges), (family, answer)
        first = int((ours != IGNORE_INDEX).nonzero()[0])
        assert theirs[first + int(merges):].tolist() == ours[first + int(merges):].tolist()
        if merges:  # the missed token holds the prompt's trailing space and the answer's first characters
            span = tok(prompt + answer, return_offsets_mapping=True)["offset_mapping"][first]
            assert span[0] < len(prompt) < span[1], (family, answer, span)
            merged_words.append(answer[:span[1] - len(prompt)])
    assert bool(merged_words) == merging, merged_words


@pytest.mark.parametrize("family", FAMILIES)
def test_chat_templates_label_the_same_tokens_under_both_spans(tokenizers, family):
    tok, fmt = tokenizers[family], FORMATS["llama3-chat"]
    for question, answer in QA:
        assert (_encode(tok, fmt, question, answer, SPAN_PROMPT_LENGTH)["labels"].tolist()
                == encode_qa(tok, fmt, question, answer, 256)["labels"].tolist())


@pytest.mark.parametrize("family", FAMILIES)
def test_legacy_prompt_length_span_is_tofus_question_token_count(tokenizers, family):
    """TOFU's TextDatasetQA: labels[:len(tokenizer.tokenize(q_start + question + q_end,
    add_special_tokens=True))] = -100 on the tokens of question + answer tag + answer."""
    tok = tokenizers[family]
    for question, answer in QA:
        new_question = PHI.prompt(question)[:-len(PHI.answer_tag)]
        full = tok(new_question + PHI.answer_tag + answer)["input_ids"] + [tok.eos_token_id]
        cut = len(tok.tokenize(new_question, add_special_tokens=True))
        enc = _encode(tok, PHI, question, answer, SPAN_PROMPT_LENGTH, LABEL_AFTER_QUESTION)
        assert enc["labels"].tolist() == [IGNORE_INDEX] * cut + full[cut:]


def test_unknown_label_span_is_refused(tokenizers):
    with pytest.raises(ValueError, match="label_span must be one of"):
        encode_prompt_continuation(tokenizers["word"], "q ", "a", 16, label_span="tokens")


@pytest.mark.slow
def test_tofu_ou_variant_scores_without_the_merged_token_and_keeps_rouge(tiny_folder, tmp_path):
    """The TOFU evaluator on a byte-level BPE model (Phi format): `ou` scores every answer one token
    shorter where the first word merged with the prompt's space, `full` (default) scores it; the
    ROUGE reference is the whole answer under both, and the evaluator block records the rule."""
    import dataclasses

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from evaluation.benchmarks.tofu.data import TofuData

    data = TofuData(tiny_folder)
    tok = byte_level_bpe(True, vocabulary_texts(data), vocab_size=1000)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=256, bos_token_id=tok.bos_token_id,
                                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)).eval()
    out = {}
    for name in ("full", "ou"):
        variant = dataclasses.replace(tofu_eval.VARIANTS[name], item_cap=4, max_new_tokens=4)
        out[name] = tofu_eval.evaluate(model, tok, PHI, data, "forget10", variant, progress=False)
    full, ou = out["full"][1], out["ou"][1]
    merged = []
    for row in full.itertuples():
        prompt = PHI.prompt(row.question)
        alone, whole = tok(prompt)["input_ids"], tok(prompt + row.answer)["input_ids"]
        merged.append(whole[:len(alone)] != alone)
    assert any(merged)
    assert (full["num_tokens"] - ou["num_tokens"]).tolist() == [int(m) for m in merged]
    assert not np.allclose(full["prob"], ou["prob"])
    assert full["generation"].fillna("").tolist() == ou["generation"].fillna("").tolist()
    assert np.allclose(full["rougeL_recall"].fillna(-1), ou["rougeL_recall"].fillna(-1))
    assert out["ou"][0]["evaluator"]["label_span"] == "prompt_length"
    assert out["full"][0]["evaluator"]["label_span"] == "offsets"
    assert "len(tokenizer(prompt))" in out["ou"][0]["evaluator"]["labelled_tokens"]
    assert out["ou"][0]["evaluator"]["decode_clean_up"] == "on"
    assert out["ou"][0]["evaluator"]["extraction_strength_ou_quirk"] is True
    assert out["full"][0]["evaluator"]["extraction_strength_ou_quirk"] is False
    assert out["full"][0]["evaluator"]["decode_clean_up"] == "as_loaded"


@pytest.mark.parametrize("family", ["bpe-byte-prefix-space", "metaspace"])
def test_double_bos_prompt_length_is_rwkus_score_completions(tokenizers, family):
    """RWKU's score_completions (official TruthfulQA): prompt and prompt + completion tokenised with
    add_special_tokens=True, though the chat-rendered prompt already holds BOS; the completion is
    `tokenized_example[len(tokenized_prompt):]`."""
    tok = tokenizers[family]
    prompt = FORMATS["llama3-chat"].prompt("Who wrote Emma?", tok) + "A: "
    for completion in ("Jane Austen wrote it.", "Oslo, Norway, in 1950."):
        prompt_ids = tok(prompt)["input_ids"]
        example_ids = tok(prompt + completion)["input_ids"]
        assert example_ids[:2] == [tok.bos_token_id] * 2
        enc = encode_prompt_continuation(tok, prompt, completion, 256, label_span=SPAN_PROMPT_LENGTH,
                                         add_special_tokens=True)
        assert enc["input_ids"].tolist() == example_ids + [tok.eos_token_id]
        assert enc["labels"][enc["labels"] != IGNORE_INDEX].tolist()[:-1] == example_ids[len(prompt_ids):]


# ---- decoding clean-up (clean_up_tokenization_spaces) ---------------------------------------------

def test_decode_clean_up_rules_and_the_rouge_they_change(tokenizers):
    from evaluation import decoding
    from evaluation.metrics import rouge

    tok = tokenizers["bpe-byte"]
    ids = tok("They do n't live in Oslo , Norway .", add_special_tokens=False)["input_ids"]
    raw = tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    assert raw == "They do n't live in Oslo , Norway ."
    cleaned = "They don't live in Oslo, Norway."
    assert decoding.decode(tok, ids, decoding.ON) == cleaned            # OU: clean-up forced, BPE too
    assert decoding.decode(tok, ids, decoding.OFF) == raw
    assert decoding.decode(tok, ids, decoding.AS_LOADED) == tok.decode(ids, skip_special_tokens=True)
    tok.clean_up_tokenization_spaces = True
    assert decoding.decode(tok, ids, decoding.TOKENIZER_FLAG) == cleaned  # transformers 4.x with the flag set
    tok.clean_up_tokenization_spaces = False
    assert decoding.decode(tok, ids, decoding.TOKENIZER_FLAG) == raw
    assert decoding.batch_decode(tok, [ids, ids], decoding.ON) == [cleaned, cleaned]
    with pytest.raises(ValueError, match="decode_clean_up must be one of"):
        decoding.decode(tok, ids, "maybe")
    # where it changes a metric: ROUGE-L recall of a generation against the decoded reference
    score = lambda ref: rouge.scorer(("rougeL",), True).score(ref, "They don't live in Oslo")["rougeL"].recall  # noqa: E731
    assert score(cleaned) != score(raw)
