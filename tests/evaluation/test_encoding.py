import torch

from evaluation import models
from evaluation.benchmarks.tofu.data import TofuData
from evaluation.encoding import IGNORE_INDEX, encode_qa, pad_batch
from evaluation.prompts import LLAMA2_CHAT, PHI
from evaluation.benchmarks.tofu.data import vocabulary_texts


def _tokenizer(tiny_folder):
    return models.train_word_tokenizer(vocabulary_texts(TofuData(tiny_folder)))


def test_prompt_formats_follow_tofu_tags():
    assert PHI.prompt("Who?") == "Question: Who?\nAnswer: "
    assert PHI.prompt("Who?", with_answer_tag=False) == "Question: Who?\n"
    assert LLAMA2_CHAT.prompt("Who?") == "[INST] Who? [/INST]"


def test_encode_qa_labels_answer_and_eos_only(tiny_folder):
    tok = _tokenizer(tiny_folder)
    enc = encode_qa(tok, PHI, "Where and when was Amara Lisbon born?", "Oslo, Norway, in 1950.", 64)
    ids, labels = enc["input_ids"], enc["labels"]
    assert ids.dtype == torch.long and ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    labelled = labels[labels != IGNORE_INDEX]
    assert tok.decode(labelled, skip_special_tokens=True) == "Oslo , Norway , in 1950 ."
    assert labelled[-1] == tok.eos_token_id
    prompt_len = len(tok(PHI.prompt("Where and when was Amara Lisbon born?"))["input_ids"])
    assert (labels[:prompt_len] == IGNORE_INDEX).all() and (labels[prompt_len:] != IGNORE_INDEX).all()
    short = encode_qa(tok, PHI, "Where and when was Amara Lisbon born?", "Oslo, Norway, in 1950.", 5)
    assert len(short["input_ids"]) == 5 and (short["labels"] == IGNORE_INDEX).all()


def test_pad_batch_right_pads(tiny_folder):
    tok = _tokenizer(tiny_folder)
    a = encode_qa(tok, PHI, "Who wrote Emma?", "Jane Austen", 64)
    b = encode_qa(tok, PHI, "Who wrote Hamlet and other plays?", "William Shakespeare", 64)
    batch = pad_batch([a, b], tok.pad_token_id)
    assert batch["input_ids"].shape == (2, len(b["input_ids"]))
    assert batch["attention_mask"][0].sum() == len(a["input_ids"])
    assert (batch["labels"][0, len(a["input_ids"]):] == IGNORE_INDEX).all()
