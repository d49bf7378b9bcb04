"""Answer labels are exact for every tokenizer family: locally trained byte-level BPE (with and
without prefix space, GPT-2 / Phi / Llama-3 style), SentencePiece-style Metaspace BPE (Llama-2) and
the word-level tokenizer of the tiny model, under every prompt format."""
import pytest
from tokenizers import Tokenizer, decoders, models as tok_models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from evaluation import models
from evaluation.encoding import IGNORE_INDEX, LABEL_AFTER_QUESTION, encode_qa
from evaluation.harness import Harness
from evaluation.prompts import FORMATS, PHI

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


def byte_level_bpe(prefix_space: bool) -> PreTrainedTokenizerFast:
    backend = Tokenizer(tok_models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space)
    backend.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", *CHAT_SPECIALS]
    backend.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
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
