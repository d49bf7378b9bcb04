"""WMDP / MMLU input validation and the WMDP unlearning corpora (missing, fake, options)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from evaluation import benchmarks
from evaluation.benchmarks.base import TRUNCATE
from evaluation.benchmarks.wmdp import data as wmdp_data
from evaluation.benchmarks.wmdp import tiny

TINY = benchmarks.get("wmdp-tiny")
REAL = benchmarks.get("wmdp")


@pytest.fixture(scope="module")
def tiny_data_folder(tmp_path_factory) -> Path:
    return tiny.write(tmp_path_factory.mktemp("wmdp_tiny") / "data")


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_generator_is_deterministic_and_in_the_real_layouts(tiny_data_folder, tmp_path):
    again = tiny.write(tmp_path / "again")
    for path in sorted(p for p in tiny_data_folder.rglob("*") if p.is_file()):
        assert (again / path.relative_to(tiny_data_folder)).read_bytes() == path.read_bytes(), path
    data = TINY.open(tiny_data_folder)
    assert data.subsets == ("bio", "cyber")
    assert all(len(rows) == 48 for rows in data.questions.values())
    assert set(data.categories.values()) == {"stem", "other", "social_sciences", "humanities"}
    assert all(len(s["dev"]) == 5 and len(s["test"]) == 11 for s in data.mmlu.values())
    # every answer is stated in the forget documents, never in the question itself
    documents = " ".join(data.forget_texts("bio"))
    for row in data.questions["bio"]:
        answer = row["choices"][row["answer"]]
        assert answer in documents and answer not in row["question"]


def test_bad_wmdp_answer_names_file_row_field(tiny_data_folder, tmp_path):
    folder = _copy(tiny_data_folder, tmp_path / "d")
    path = folder / "wmdp" / "bio_questions.json"
    rows = json.loads(path.read_text())
    rows[3]["answer"] = 4
    path.write_text(json.dumps(rows))
    with pytest.raises(wmdp_data.WmdpDataError, match=r"bio_questions.json: row 3, field 'answer': must be .*0-3.*got 4"):
        TINY.open(folder)
    rows[3]["answer"] = 1
    rows[5]["choices"] = rows[5]["choices"][:3]
    path.write_text(json.dumps(rows))
    with pytest.raises(wmdp_data.WmdpDataError, match=r"row 5, field 'choices': must be a list of 4 strings"):
        TINY.open(folder)


def test_bad_mmlu_csv_names_file_row_field(tiny_data_folder, tmp_path):
    folder = _copy(tiny_data_folder, tmp_path / "d")
    path = folder / "mmlu" / "test" / "guild_trade_test.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0].replace("choice3", "choiceD")] + lines[1:]) + "\n")
    with pytest.raises(wmdp_data.WmdpDataError, match=r"guild_trade_test.csv: row 0: header must be question,choice0"):
        TINY.open(folder)
    bad = lines[2].rsplit(",", 1)[0] + ",7"
    path.write_text("\n".join([lines[0], lines[1], bad] + lines[3:]) + "\n")
    with pytest.raises(wmdp_data.WmdpDataError, match=r"guild_trade_test.csv: row 2, field 'answer': .*got '7'"):
        TINY.open(folder)


def test_task_file_lm_eval_rejects_is_reported(tiny_data_folder, tmp_path):
    pytest.importorskip("lm_eval")
    from evaluation.benchmarks.wmdp import scoring

    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "ok.yaml").write_text(yaml.safe_dump(
        scoring.task_defs.wmdp_task("bio", tiny_data_folder / "wmdp" / "bio_questions.json", tmp_path / "cache")))
    (tmp_path / "tasks" / "_group.yaml").write_text("group: both\ntask: [wmdp_bio, broken]\n")
    (tmp_path / "tasks" / "broken.yaml").write_text(
        "task: broken\ndataset_path: json\ntest_split: test\noutput_type: no_such_type\ndoc_to_text: q\n")
    with pytest.raises(ValueError, match=r"lm-eval rejected task file .*broken.yaml \(task 'broken'\): "
                                         r"ValueError: Got invalid output_type 'no_such_type'"):
        scoring.run_lm_eval(object(), str(tmp_path / "tasks"), ["both"], 0)
    with pytest.raises(ValueError, match=r"lm-eval found no task or group \['wmdp_chem'\]"):
        scoring.run_lm_eval(object(), str(tmp_path / "tasks"), ["wmdp_chem"], 0)


def test_real_release_counts_are_checked(tmp_path):
    (tmp_path / "wmdp").mkdir()
    rows = [{"question": f"q{i}?", "choices": ["a", "b", "c", "d"], "answer": 0} for i in range(3)]
    for subset in ("bio", "cyber"):
        (tmp_path / "wmdp" / f"{subset}_questions.json").write_text(json.dumps(rows))
    with pytest.raises(wmdp_data.WmdpDataError, match=r"holds 3 questions, the cais/wmdp 2024-04-23 .* has 1273"):
        REAL.open(tmp_path)


def test_missing_corpus_fails_before_any_model_loads(tiny_data_folder, tmp_path, monkeypatch):
    from evaluation import models
    from workflows import commands

    folder = _copy(tiny_data_folder, tmp_path / "d")
    (folder / "wmdp-corpora" / "bio-retain-corpus.jsonl").unlink()

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the corpus check")

    monkeypatch.setattr(models, "load_model", no_model)
    spec = {"benchmark": "wmdp-tiny", "split": "bio", "model": "tiny-llama", "objective": "graddiff",
            "rectifier": "none", "seed": 0, "hyperparameters": {"max_steps": 1}}
    with pytest.raises(wmdp_data.WmdpDataError, match=r"bio-retain-corpus not found at .*wmdp-corpora/bio-retain-corpus"
                                                        r".jsonl.*cais/wmdp-corpora"):
        commands.unlearn(spec, str(folder), "unused-target", tmp_path / "m", tmp_path / "l", tmp_path / "r")


def test_real_benchmark_reads_fake_corpora_in_the_official_layout(tmp_path):
    """The real `wmdp` benchmark on small fake corpora written where OU/SAGO keep them."""
    corpora = tmp_path / "wmdp-corpora"
    corpora.mkdir()
    (corpora / "bio-forget-corpus.jsonl").write_text(
        "".join(json.dumps({"title": f"t{i}", "abstract": "x", "text": f"bio forget document {i} " * 5,
                            "doi": "d"}) + "\n" for i in range(4)))
    (corpora / "bio-retain-corpus.jsonl").write_text("".join(json.dumps({"text": f"retain {i} " * 20}) + "\n" for i in range(3)))
    (corpora / "cyber-forget-corpus.jsonl").write_text(json.dumps({"text": "short"}) + "\n" + json.dumps("a raw string document " * 4) + "\n")
    (tmp_path / "wikitext").mkdir()
    (tmp_path / "wikitext" / "wikitext-2-raw-v1-test.jsonl").write_text(
        json.dumps({"text": ""}) + "\n" + json.dumps({"text": " = Robert Boulter = \n"}) + "\n"
        + json.dumps({"text": "Robert Boulter is an English film , television and theatre actor . " * 2}) + "\n")
    data = wmdp_data.WmdpData(tmp_path, {}, {}, {}, "fake", (corpora, tmp_path / "wmdp" / "wmdp-corpora"))
    corpora_default = REAL.corpora_for_run(data, "bio", None)
    assert len(corpora_default["forget"]) == 4 and corpora_default["forget"].items[0].startswith("bio forget document 0")
    assert len(corpora_default["retain"]) == 3 and corpora_default["forget"].packing == "concatenate"
    official = REAL.corpora_for_run(data, "bio", {"retain": "wikitext", "packing": "truncate",
                                                  "retain_max_length": 512, "min_chars": 50})
    assert official["retain"].items == ("Robert Boulter is an English film , television and theatre actor . " * 2,)
    assert official["retain"].max_length == 512 and official["forget"].packing == TRUNCATE
    with pytest.raises(wmdp_data.WmdpDataError, match="cyber-retain-corpus not found"):
        REAL.corpora_for_run(data, "cyber", None)
    assert REAL.corpora_for_run(data, "cyber", {"retain": "wikitext"})["forget"].items[1].startswith("a raw string")
    with pytest.raises(ValueError, match=r"corpus option\(s\) \['shuffle'\] are not accepted by benchmark 'wmdp'"):
        REAL.corpora_for_run(data, "bio", {"shuffle": True})
    (corpora / "bio-forget-corpus.jsonl").write_text(json.dumps({"title": "no text"}) + "\n")
    with pytest.raises(wmdp_data.WmdpDataError, match=r"bio-forget-corpus.jsonl: row 1, field 'text': missing"):
        REAL.corpora_for_run(data, "bio", None)


def test_truncate_packing_gives_one_example_per_document(tiny_data_folder):
    from evaluation import models
    from evaluation.encoding import IGNORE_INDEX, encode_corpus, encode_text_documents

    tokenizer = models.train_word_tokenizer(["alpha beta gamma delta epsilon zeta"])
    examples = encode_text_documents(tokenizer, ["alpha beta gamma delta epsilon", "", "zeta"], max_length=4)
    assert [e["input_ids"].tolist() for e in examples] == [
        [tokenizer.bos_token_id, *tokenizer("alpha beta gamma", add_special_tokens=False)["input_ids"]],
        [tokenizer.bos_token_id, tokenizer.convert_tokens_to_ids("zeta")]]
    assert examples[0]["labels"][0] == IGNORE_INDEX and (examples[0]["labels"][1:] == examples[0]["input_ids"][1:]).all()
    corpus = TINY.corpora_for_run(TINY.open(tiny_data_folder), "bio", {"packing": "truncate", "retain_max_length": 8})
    retain = encode_corpus(tokenizer, None, corpus["retain"], max_length=64)
    assert len(retain) == len(corpus["retain"]) and max(len(e["input_ids"]) for e in retain) <= 8
