"""The benchmark interface: every registered benchmark is complete, TOFU on it is unchanged, text
corpora become labelled chunks."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from evaluation import benchmarks, evaluate, models
from evaluation.benchmarks.tofu import evaluator as tofu_eval
from evaluation.benchmarks.base import QA, TEXT, Corpus
from evaluation.encoding import IGNORE_INDEX, encode_text_chunks
from evaluation.metrics.registry import HIGHER, LOWER
from evaluation.benchmarks.tofu.data import vocabulary_texts


@pytest.mark.parametrize("name", benchmarks.names())
def test_every_benchmark_declares_what_the_pipeline_reads(name):
    bench = benchmarks.get(name)
    assert bench.name == name and bench.family and bench.description
    assert bench.default_variant in bench.variants
    directions = {info.name: info.better for info in bench.metrics}
    for metric in bench.headline.forget + bench.headline.utility:
        assert metric in directions, f"{name}: headline metric {metric} has no direction"
    assert bench.generated == (bench.data_subdir is None)
    for split in bench.splits:
        bench.check_split(split)
    with pytest.raises(ValueError, match="split"):
        bench.check_split("no-such-split")


def test_leaderboard_reads_axes_and_directions_from_the_benchmarks():
    from leaderboard import headline

    assert headline.family("tofu-tiny") == "tofu"
    assert headline.headline("tofu-tiny").forget == ("forget_quality",)
    assert headline.metric_direction("model_utility") == headline.HIGHER
    for bench in benchmarks.BENCHMARKS.values():
        for info in bench.metrics:
            expected = {HIGHER: headline.HIGHER, LOWER: headline.LOWER}.get(info.better)
            if expected:
                assert headline.metric_direction(info.name) == expected, (bench.name, info.name)


def test_tofu_streams_and_reference_splits(tiny_folder):
    bench = benchmarks.get("tofu-tiny")
    data = bench.open(tiny_folder)
    corpora = bench.unlearning_corpora(data, "forget10")
    assert corpora["forget"].kind == QA and len(corpora["forget"]) == 50
    assert len(corpora["retain"]) == 450
    assert bench.finetune_split("target", "forget05") == "full"
    assert bench.finetune_split("retain", "forget05") == "retain95"
    with pytest.raises(ValueError, match="forget01, forget05, forget10"):
        bench.unlearning_corpora(data, "forget11")


def test_tofu_on_the_interface_gives_the_same_numbers_as_the_evaluator(tiny_folder, tmp_path):
    """`evaluate.run` (benchmark-agnostic) writes exactly what tofu_eval computes directly."""
    torch.manual_seed(0)
    bench = benchmarks.get("tofu-tiny")
    folder = models.build_tiny_llama(bench.vocabulary_texts(bench.open(tiny_folder)), tmp_path / "m", seed=3)
    document = evaluate.run(evaluate.EvaluationSpec(
        str(folder), "tofu-tiny", str(tiny_folder), "forget01", None, tmp_path / "out",
        identity={"role": "retain", "method": "retain"}, batch_size=16, progress=False))
    model, tokenizer, fmt = models.load_model(str(folder))
    direct, table, _ = tofu_eval.evaluate(model, tokenizer, fmt, bench.open(tiny_folder), "forget01",
                                          tofu_eval.VARIANTS["full"], batch_size=16, progress=False,
                                          is_retain_model=True)
    assert document["evaluator"]["variant"] == "full"
    assert json.loads(json.dumps(direct["metrics"])) == document["metrics"]
    written = pd.read_parquet(tmp_path / "out" / "per_item.parquet")
    assert written["gt_loss_mean"].tolist() == pytest.approx(table["gt_loss_mean"].tolist(), rel=0, abs=0)


def test_text_chunks_label_every_token_after_bos(tiny_folder):
    from evaluation.benchmarks.tofu.data import TofuData

    tokenizer = models.train_word_tokenizer(vocabulary_texts(TofuData(tiny_folder)))
    texts = ["Who wrote Emma ?", "Jane Austen wrote Emma and Persuasion ."]
    chunks = encode_text_chunks(tokenizer, texts, max_length=5)
    stream = [t for c in chunks for t in c["input_ids"][1:].tolist()]
    expected = (tokenizer(texts[0], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
                + tokenizer(texts[1], add_special_tokens=False)["input_ids"])
    assert stream == expected  # nothing dropped, EOS between documents
    for chunk in chunks:
        assert len(chunk["input_ids"]) <= 5 and chunk["input_ids"][0] == tokenizer.bos_token_id
        assert chunk["labels"][0] == IGNORE_INDEX
        assert chunk["labels"][1:].tolist() == chunk["input_ids"][1:].tolist()


def test_text_streams_refuse_objectives_that_need_qa_pairs():
    from methods.data import build_text_streams

    example = {"input_ids": torch.tensor([1, 2]), "attention_mask": torch.tensor([1, 1]),
               "labels": torch.tensor([-100, 2])}
    streams = build_text_streams("graddiff", [example], [example, example])
    assert {k: len(v) for k, v in streams.items()} == {"forget": 1, "retain": 2}
    with pytest.raises(ValueError, match="forget_idk.*question/answer"):
        build_text_streams("idknll", [example], [example])


def test_corpus_rejects_unknown_kinds_and_empty_data():
    with pytest.raises(ValueError, match="kind"):
        Corpus("images", ("x",), "here")
    with pytest.raises(ValueError, match="empty"):
        Corpus(TEXT, (), "raw/forget.json")


def test_training_can_label_the_answer_tag_as_tofu_legacy_does(tiny_folder):
    from evaluation.prompts import PHI
    from workflows.commands import unlearning_streams

    bench = benchmarks.get("tofu-tiny")
    data = bench.open(tiny_folder)
    corpora = bench.unlearning_corpora(data, "forget01")
    tokenizer = models.train_word_tokenizer(bench.vocabulary_texts(data))
    ours = unlearning_streams("graddiff", corpora, tokenizer, PHI, 64, 0)
    legacy = unlearning_streams("graddiff", corpora, tokenizer, PHI, 64, 0, "answer_tag+answer")
    tag_tokens = len(tokenizer("Answer: ", add_special_tokens=False)["input_ids"])
    for a, b in zip(ours["forget"], legacy["forget"]):
        assert int((b["labels"] != IGNORE_INDEX).sum()) == int((a["labels"] != IGNORE_INDEX).sum()) + tag_tokens
