"""Prompt formats of a real chat model (SmolLM2-135M-Instruct's family, on a tiny same-config twin):
the format comes from the tokenizer, not the folder name; `chat-template` renders the model's own
template (no Llama-3 system prompt); TOFU QA pairs through the template are labelled on exactly the
answer tokens plus the EOS (<|im_end|>, the template's turn end), under every evaluator variant's label
span, with no template token in the labels."""
import pytest

from evaluation import models
from evaluation.benchmarks.tofu import evaluator as tofu_eval
from evaluation.encoding import IGNORE_INDEX, encode_qa
from evaluation.prompts import LLAMA3_SYSTEM_PROMPT, get_format
from tests.evaluation import smollm_twin

QA = [("Where and when was Amara Lisbon born?", "Oslo, Norway, in 1950."),
      ("What genre does Jon Kell write?", "He writes crime fiction set in Lagos."),
      ("Who wrote Emma?", "Jane Austen wrote it.")]
TEXTS = [text for pair in QA for text in pair] * 20


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    return smollm_twin.build(tmp_path_factory.mktemp("twin") / "smollm-like", TEXTS)


@pytest.fixture(scope="module")
def tokenizer(twin):
    return models.load_tokenizer(str(twin))


def test_a_chat_tokenizer_gets_its_own_template_whatever_the_folder_name(twin, tokenizer):
    # the folder name says nothing about chat ("smollm-like"): the old name-based rule chose phi
    assert models.infer_format(str(twin), tokenizer).name == "chat-template"
    assert models.infer_format("org/plain-model", None).name == "phi"
    assert models.infer_format("meta-llama/Llama-3.2-1B-Instruct", tokenizer).name == "llama3-chat"
    _, _, fmt = models.load_model(str(twin))
    assert fmt.name == "chat-template"


def test_a_tokenizer_without_a_template_keeps_the_question_answer_tags(tmp_path):
    folder = smollm_twin.build(tmp_path / "base", TEXTS, chat_template=False)
    _, tokenizer, fmt = models.load_model(str(folder))
    assert tokenizer.chat_template is None and fmt.name == "phi"


def test_chat_template_format_adds_no_llama3_system_prompt(tokenizer):
    prompt = get_format("chat-template").prompt("Who wrote Emma?", tokenizer)
    assert prompt == tokenizer.apply_chat_template([{"role": "user", "content": "Who wrote Emma?"}],
                                                   tokenize=False, add_generation_prompt=True)
    assert "named SmolLM" in prompt and LLAMA3_SYSTEM_PROMPT not in prompt
    # llama3-chat stays the Llama-3 format (existing configs), with Llama-3's system prompt
    assert LLAMA3_SYSTEM_PROMPT in get_format("llama3-chat").prompt("Who wrote Emma?", tokenizer)


@pytest.mark.parametrize("variant", sorted(tofu_eval.VARIANTS))
@pytest.mark.parametrize("question,answer", QA)
def test_tofu_labels_through_the_chat_template_are_the_answer_and_eos(tokenizer, variant, question, answer):
    fmt = get_format("chat-template")
    encoded = encode_qa(tokenizer, fmt, question, answer, 512, labels_from=tofu_eval.get_variant(variant).labels)
    labels = [t for t in encoded["labels"].tolist() if t != IGNORE_INDEX]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    assert labels == answer_ids + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    assert tokenizer.eos_token == "<|im_end|>"  # the template's turn end is the EOS that ends the labels
    specials = {tokenizer.convert_tokens_to_ids(t) for t in smollm_twin.SPECIALS}
    assert not specials & set(labels[:-1])  # no template token inside the labelled answer
    prompt_ids = encoded["input_ids"].tolist()[:len(encoded["labels"]) - len(labels)]
    assert tokenizer.decode(prompt_ids) == fmt.prompt(question, tokenizer)  # one BOS: the template's own
    assert encoded["prefix_labels"] == 0


def test_generation_prompt_of_tofu_full_ends_with_the_assistant_turn(tokenizer):
    rows = {"forget": [{"question": q, "answer": a, "paraphrased_answer": a, "perturbed_answer": [a]}
                       for q, a in QA]}
    requests = tofu_eval.build_requests(rows, get_format("chat-template"), tokenizer,
                                        tofu_eval.get_variant("full"))
    assert all(p.endswith("<|im_start|>assistant\n") for p in requests.prompts)


def test_the_printed_origin_of_the_format(twin, tmp_path):
    assert models.format_origin("phi", str(twin)) == "--prompt-format"
    assert models.format_origin(None, "smollm2-135m") == "the preset"
    assert models.format_origin(None, str(twin)) == "inferred from the model name and tokenizer"
    carded = smollm_twin.build(tmp_path / "carded", TEXTS, card={})
    assert models.format_origin(None, str(carded)) == "the model card"
