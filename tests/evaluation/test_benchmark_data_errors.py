"""Bad data in MUSE, WMDP, RWKU and TOFU (issue #28): every problem is one line naming the file (and
the line, row or byte), raised when the benchmark is opened, before any model loads."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evaluation import benchmarks
from evaluation.benchmarks import data_files
from evaluation.benchmarks.tofu import data as tofu
from evaluation.benchmarks.muse import data as muse_data
from evaluation.benchmarks.muse import tiny as muse_tiny
from evaluation.benchmarks.rwku import tiny as rwku_tiny
from evaluation.benchmarks.rwku.data import RwkuDataError
from evaluation.benchmarks.wmdp import data as wmdp_data
from evaluation.benchmarks.wmdp import tiny as wmdp_tiny

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
NOT_UTF8 = b'["caf\xe9"]'  # Latin-1 e-acute: byte offset 5


@pytest.fixture(scope="module")
def muse_folder(tmp_path_factory) -> Path:
    return muse_tiny.write(tmp_path_factory.mktemp("muse") / "data", n=4)


@pytest.fixture(scope="module")
def wmdp_folder(tmp_path_factory) -> Path:
    return wmdp_tiny.write(tmp_path_factory.mktemp("wmdp") / "data")


@pytest.fixture(scope="module")
def rwku_folder(tmp_path_factory) -> Path:
    return rwku_tiny.write(tmp_path_factory.mktemp("rwku") / "data")


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "copy"))


def _truncate(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")


def _edit(path: Path, change) -> None:
    rows = json.loads(path.read_text(encoding="utf-8"))
    change(rows)
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")


def _open(name: str, folder: Path):
    return benchmarks.get(name).open(folder)


# ---- the shared reader -------------------------------------------------------------------------

def test_reader_names_byte_offset_line_and_truncation(tmp_path):
    bad = tmp_path / "latin1.json"
    bad.write_bytes(NOT_UTF8)
    with pytest.raises(data_files.DataFileError, match=r"latin1\.json is not UTF-8 text \(byte offset 5: "):
        data_files.read_json_rows(bad)
    cut = tmp_path / "cut.json"
    cut.write_text('[\n{"question": "a", "answer": "b"},\n{"question": "c", "ans', encoding="utf-8")
    for read in (data_files.read_json, data_files.read_json_rows):  # not "line 1 is not JSON"
        with pytest.raises(data_files.DataFileError, match=r"cut\.json: line 3 is not JSON \(.* at column \d+, "
                                                           r"offset \d+\); the file ends there: it is truncated"):
            read(cut)
    lines = tmp_path / "lines.jsonl"
    lines.write_text('{"a": 1}\n{"a": 2}\n{"a": \n{"a": 4}\n', encoding="utf-8")
    with pytest.raises(data_files.DataFileError, match=r"lines\.jsonl: line 3 is not JSON"):
        data_files.read_json_rows(lines)
    empty = tmp_path / "empty.json"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(data_files.DataFileError, match=r"empty\.json: line 1 is not JSON .*the file is empty"):
        data_files.read_json(empty)


def test_rwku_no_longer_borrows_tofus_reader():
    source = (REPO / "evaluation" / "benchmarks" / "rwku" / "data.py").read_text(encoding="utf-8")
    assert "tofu" not in source.lower() and not hasattr(tofu, "read_json_rows")


# ---- 1. non-UTF-8, truncated JSON, incomplete tiny manifests -------------------------------------

@pytest.mark.parametrize("file, damage, message", [
    ("knowmem/forget_qa.json", "latin1", r"knowmem/forget_qa\.json is not UTF-8 text \(byte offset 5"),
    ("verbmem/forget.json", "truncate", r"verbmem/forget\.json: line \d+ is not JSON .*truncated"),
    ("raw/forget.json", "truncate", r"raw/forget\.json: line \d+ is not JSON .*truncated"),
])
def test_muse_unreadable_file_is_named(muse_folder, tmp_path, file, damage, message):
    folder = _copy(muse_folder, tmp_path)
    path = folder / file
    path.write_bytes(NOT_UTF8) if damage == "latin1" else _truncate(path)
    with pytest.raises(muse_data.MuseDataError, match=message):
        _open("muse-tiny", folder)


@pytest.mark.parametrize("content, message", [
    (b'{"benchmark": "muse-tiny", "counts": {"raw/forget": 1', r"muse_tiny\.json: line 1 is not JSON .*truncated"),
    (b"\xff\xfe{}", r"muse_tiny\.json is not UTF-8 text"),
    (b'{"benchmark": "muse-tiny"}', r"muse_tiny\.json: incomplete muse-tiny manifest \(no \"counts\""),
    (b'{"counts": {"raw/forget": 14}}', r"muse_tiny\.json: incomplete muse-tiny manifest \(counts missing for "
                                        r"\['raw/retain1'"),
    (b'[1, 2]', r"muse_tiny\.json: incomplete muse-tiny manifest"),
])
def test_muse_tiny_manifest_corrupt_or_incomplete(muse_folder, tmp_path, content, message):
    folder = _copy(muse_folder, tmp_path)
    (folder / muse_tiny.MANIFEST).write_bytes(content)
    with pytest.raises(muse_data.MuseDataError, match=message + ".*ubench data generate --benchmark muse-tiny"):
        _open("muse-tiny", folder)


def test_muse_tiny_manifest_covers_every_generated_file():
    assert set(muse_tiny.FILES) == set(muse_tiny.generate(2, 0))


@pytest.mark.parametrize("file, damage, message", [
    ("wmdp/bio_questions.json", "latin1", r"bio_questions\.json is not UTF-8 text \(byte offset 5"),
    ("wmdp/cyber_questions.json", "truncate", r"cyber_questions\.json: line \d+ is not JSON .*truncated"),
    ("mmlu/test/orchard_lore_test.csv", "latin1", r"orchard_lore_test\.csv is not UTF-8 text \(byte offset 5"),
])
def test_wmdp_unreadable_file_is_named(wmdp_folder, tmp_path, file, damage, message):
    folder = _copy(wmdp_folder, tmp_path)
    path = folder / file
    if not path.is_file():  # the tiny twin's first MMLU subject, whatever its name
        path = sorted((folder / "mmlu" / "test").glob("*_test.csv"))[0]
        message = message.replace("orchard_lore_test", path.stem)
    path.write_bytes(NOT_UTF8) if damage == "latin1" else _truncate(path)
    with pytest.raises(wmdp_data.WmdpDataError, match=message):
        _open("wmdp-tiny", folder)


def test_wmdp_corpus_not_utf8_is_named(wmdp_folder, tmp_path):
    folder = _copy(wmdp_folder, tmp_path)
    (folder / "wmdp-corpora" / "bio-forget-corpus.jsonl").write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    bench = benchmarks.get("wmdp-tiny")
    with pytest.raises(wmdp_data.WmdpDataError, match=r"bio-forget-corpus\.jsonl is not UTF-8 text \(byte offset 28"):
        bench.unlearning_corpora(bench.open(folder), "bio")


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("counts"), r"counts \(a positive question count"),
    (lambda m: m["counts"].pop("cyber"), r"counts \(a positive question count for each of \['bio', 'cyber'\]"),
    (lambda m: m.pop("categories"), r"categories \(MMLU subject"),
    (lambda m: m.pop("version"), r"version"),
])
def test_wmdp_tiny_manifest_incomplete(wmdp_folder, tmp_path, change, message):
    folder = _copy(wmdp_folder, tmp_path)
    path = folder / "wmdp_tiny.json"
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))
    with pytest.raises(wmdp_data.WmdpDataError, match=r"wmdp_tiny\.json: incomplete wmdp-tiny manifest .*" + message):
        _open("wmdp-tiny", folder)


def test_wmdp_tiny_manifest_corrupt(wmdp_folder, tmp_path):
    folder = _copy(wmdp_folder, tmp_path)
    _truncate(folder / "wmdp_tiny.json")
    with pytest.raises(wmdp_data.WmdpDataError, match=r"corrupt wmdp-tiny manifest: .*wmdp_tiny\.json: line \d+ is "
                                                      r"not JSON .*truncated.*--benchmark wmdp-tiny"):
        _open("wmdp-tiny", folder)


@pytest.mark.parametrize("damage, message", [
    ("latin1", r"passage\.json is not UTF-8 text \(byte offset 5"),
    ("truncate", r"passage\.json: line \d+ is not JSON .*truncated"),
])
def test_rwku_unreadable_file_is_named(rwku_folder, tmp_path, damage, message):
    folder = _copy(rwku_folder, tmp_path)
    path = next(folder.glob("2_*")) / "passage.json"
    path.write_bytes(NOT_UTF8) if damage == "latin1" else _truncate(path)
    with pytest.raises(RwkuDataError, match=message):
        _open("rwku-tiny", folder)


@pytest.mark.parametrize("content, message", [
    (b'{"targets": 1', r"corrupt rwku-tiny manifest: .*rwku_tiny\.json: line 1 is not JSON .*truncated"),
    (b'{"seed": 0}', r"rwku_tiny\.json: incomplete rwku-tiny manifest \(needs \"targets\""),
    (b'{"targets": "12"}', r"rwku_tiny\.json: incomplete rwku-tiny manifest"),
])
def test_rwku_tiny_manifest_corrupt_or_incomplete(rwku_folder, tmp_path, content, message):
    folder = _copy(rwku_folder, tmp_path)
    (folder / "rwku_tiny.json").write_bytes(content)
    with pytest.raises(RwkuDataError, match=message + ".*--benchmark rwku-tiny"):
        _open("rwku-tiny", folder)


def test_tofu_truncated_array_says_truncated(tmp_path):
    (tmp_path / "full.json").write_text('[\n{"question": "q", "answer": "a"},\n{"question": "r", "an',
                                        encoding="utf-8")
    with pytest.raises(tofu.TofuDataError, match=r"full\.json: line 3 is not JSON .*truncated.*locuslab/TOFU"):
        tofu.load_split("full", tmp_path)


# ---- 2. repeated eval items ----------------------------------------------------------------------

@pytest.mark.parametrize("file, message", [
    ("knowmem/forget_qa.json", r"knowmem/forget_qa\.json: 1 repeated question\(s\) \(row 3 repeats row 1; first: '"),
    ("verbmem/forget.json", r"verbmem/forget\.json: 1 repeated prompt\(s\) \(row 3 repeats row 1"),
    ("privleak/holdout.json", r"privleak/holdout\.json: 1 repeated text\(s\) \(row 3 repeats row 1"),
])
def test_muse_repeated_eval_item_names_file_and_rows(muse_folder, tmp_path, file, message):
    folder = _copy(muse_folder, tmp_path)

    def repeat(rows):
        rows[3] = rows[1]

    _edit(folder / file, repeat)
    with pytest.raises(muse_data.MuseDataError, match=message + r".*remove the copies"):
        _open("muse-tiny", folder)


def test_muse_raw_corpus_may_repeat_documents(muse_folder, tmp_path):
    folder = _copy(muse_folder, tmp_path)
    _edit(folder / "raw" / "forget.json", lambda rows: rows.__setitem__(5, rows[4]))
    assert _open("muse-tiny", folder).corpus("news")["raw/forget"][5] == _open("muse-tiny", folder).corpus(
        "news")["raw/forget"][4]


def test_wmdp_repeated_question_names_file_and_rows(wmdp_folder, tmp_path):
    folder = _copy(wmdp_folder, tmp_path)
    _edit(folder / "wmdp" / "cyber_questions.json", lambda rows: rows.__setitem__(len(rows) - 1, rows[6]))
    count = len(json.loads((folder / "wmdp" / "cyber_questions.json").read_text()))
    with pytest.raises(wmdp_data.WmdpDataError, match=rf"cyber_questions\.json: 1 repeated question\(s\) with the "
                                                      rf"same choices \(row {count - 1} repeats row 6\); every question"):
        _open("wmdp-tiny", folder)


def test_wmdp_same_question_with_other_choices_is_another_item(wmdp_folder, tmp_path):
    folder = _copy(wmdp_folder, tmp_path)

    def reask(rows):
        rows[-1] = {**rows[6], "choices": rows[6]["choices"][::-1], "answer": 3 - rows[6]["answer"]}

    _edit(folder / "wmdp" / "cyber_questions.json", reask)
    assert _open("wmdp-tiny", folder).questions["cyber"][-1]["question"] == _open("wmdp-tiny", folder).questions[
        "cyber"][6]["question"]


# ---- 3. RWKU field types, empty answers, extra target folders ------------------------------------

@pytest.mark.parametrize("file, field, value, message", [
    ("forget_level1", "answer", 42, r"forget_level1\.json, row 1: field 'answer' must be a non-empty string, got 42"),
    ("forget_level2", "answer", "  ", r"forget_level2\.json, row 1: field 'answer' must be a non-empty string"),
    ("neighbor_level1", "answer", "", r"neighbor_level1\.json, row 1: field 'answer' must be a non-empty string"),
    ("forget_level3", "query", ["a list"], r"forget_level3\.json, row 1: field 'query' must be a non-empty string"),
    ("forget_level3", "type", 3, r"forget_level3\.json, row 1: field 'type' must be a non-empty string, got 3"),
    ("passage", "text", "", r"passage\.json, row 1: field 'text' must be a non-empty string"),
    ("intro", "target", None, r"intro\.json, row 0: field 'target' must be a non-empty string, got None"),
])
def test_rwku_core_field_types_refused_at_open(rwku_folder, tmp_path, file, field, value, message):
    folder = _copy(rwku_folder, tmp_path)
    row = 0 if file == "intro" else 1
    _edit(next(folder.glob("2_*")) / f"{file}.json", lambda rows: rows[row].__setitem__(field, value))
    with pytest.raises(RwkuDataError, match=message):
        _open("rwku-tiny", folder)


@pytest.mark.parametrize("file, change, message", [
    ("triviaqa", lambda r: r.__setitem__("answers", "Paris"), r"field 'answers' must be a non-empty list of non-empty"),
    ("triviaqa", lambda r: r.__setitem__("answers", []), r"field 'answers' must be a non-empty list"),
    ("retain_bbh", lambda r: r.__setitem__("answer", 7), r"field 'answer' must be a non-empty string, got 7"),
    ("retain_mmlu", lambda r: r.__setitem__("answer", True), r"answer must be an int index into choices, got True"),
    ("retain_mmlu", lambda r: r["examples"][0].__setitem__("answer", "B"),
     r"examples\[0\]: answer must be an int index into choices, got 'B'"),
    ("truthful", lambda r: r["mc1_targets"].__setitem__("choices", [1, 2]), r"mc1_targets must be a dict of"),
    ("positive", lambda r: r.__setitem__("text", 3.5), r"field 'text' must be a non-empty string, got 3\.5"),
])
def test_rwku_optional_file_types_refused_at_open(rwku_folder, tmp_path, file, change, message):
    folder = _copy(rwku_folder, tmp_path)
    _edit(next(folder.glob("1_*")) / f"{file}.json", lambda rows: change(rows[0]))
    with pytest.raises(RwkuDataError, match=rf"{file}\.json, row 0.*" + message):
        _open("rwku-tiny", folder)  # before any model loads, not in the utility scorer after the evaluation


def test_rwku_extra_target_folder_is_named(rwku_folder, tmp_path):
    folder = _copy(rwku_folder, tmp_path)
    shutil.copytree(next(folder.glob("3_*")), folder / "13_Extra_Person")
    with pytest.raises(RwkuDataError, match=r"expected target folders 1\.\.12; unexpected folder\(s\) "
                                            r"\['13_Extra_Person'\]: move them out of"):
        _open("rwku-tiny", folder)
    shutil.rmtree(next(folder.glob("5_*")))
    with pytest.raises(RwkuDataError, match=r"missing ids \[5\]; unexpected folder\(s\) \['13_Extra_Person'\]"):
        _open("rwku-tiny", folder)


# ---- 4. blank forget corpora -----------------------------------------------------------------------

def test_muse_blank_forget_corpus_names_file_and_rows(muse_folder, tmp_path):
    folder = _copy(muse_folder, tmp_path)
    _edit(folder / "raw" / "forget.json", lambda rows: rows.__setitem__(slice(None), ["", "  \n"] * 7))
    with pytest.raises(muse_data.MuseDataError, match=r"raw/forget\.json: every document is blank \(rows 0-13, all 14"):
        _open("muse-tiny", folder)


def test_wmdp_blank_forget_corpus_names_file_and_lines(wmdp_folder, tmp_path):
    folder = _copy(wmdp_folder, tmp_path)
    (folder / "wmdp-corpora" / "bio-forget-corpus.jsonl").write_text(
        '{"text": ""}\n\n{"text": "   "}\n"\\n"\n', encoding="utf-8")
    bench = benchmarks.get("wmdp-tiny")
    with pytest.raises(wmdp_data.WmdpDataError, match=r"bio-forget-corpus\.jsonl: every document is blank "
                                                      r"\(lines 1, 3, 4: empty or whitespace"):
        bench.unlearning_corpora(bench.open(folder), "bio")


def test_rwku_blank_passage_is_refused_at_open(rwku_folder, tmp_path):
    folder = _copy(rwku_folder, tmp_path)
    _edit(next(folder.glob("4_*")) / "passage.json", lambda rows: [row.__setitem__("text", " ") for row in rows])
    with pytest.raises(RwkuDataError, match=r"4_.*passage\.json, row 0: field 'text' must be a non-empty string"):
        _open("rwku-tiny", folder)


# ---- 5. MUSE is validated when opened, before any model loads --------------------------------------

def _no_model(*args, **kwargs):
    raise AssertionError("a model was loaded before the MUSE data were checked")


def test_muse_open_validates_eagerly(muse_folder, tmp_path):
    folder = _copy(muse_folder, tmp_path)
    _edit(folder / "knowmem" / "retain_qa.json", lambda rows: rows[2].pop("answer"))
    with pytest.raises(muse_data.MuseDataError, match=r"retain_qa\.json row 2: missing field 'answer'"):
        benchmarks.get("muse-tiny").open(folder)  # no .corpus(...) call: open() itself reads
    with pytest.raises(muse_data.MuseDataError, match=r"holds no corpus: expected .*/news/ or .*/books/"):
        benchmarks.get("muse").open(tmp_path / "copy" / "raw")


def test_muse_data_errors_come_before_the_model_in_evaluate(muse_folder, tmp_path, monkeypatch):
    from evaluation import evaluate, models

    monkeypatch.setattr(models, "load_model", _no_model)
    folder = _copy(muse_folder, tmp_path)
    (folder / "privleak" / "forget.json").write_bytes(NOT_UTF8)
    with pytest.raises(muse_data.MuseDataError, match=r"privleak/forget\.json is not UTF-8"):
        evaluate.run(evaluate.EvaluationSpec(
            "unused-model", "muse-tiny", str(folder), "news", None, tmp_path / "out", progress=False))
    monkeypatch.setattr(muse_data, "OFFICIAL_COUNTS", {})  # the tiny corpus stands in for MUSE-News
    real = tmp_path / "real"
    shutil.copytree(muse_folder, real / "news")
    with pytest.raises(muse_data.MuseDataError, match="MUSE-Books is not in"):
        evaluate.run(evaluate.EvaluationSpec(
            "unused-model", "muse", str(real), "books", None, tmp_path / "out", progress=False))
    assert not (tmp_path / "out").exists()


def test_muse_data_errors_come_before_the_model_in_unlearn(muse_folder, tmp_path, monkeypatch):
    from evaluation import models
    from workflows import commands

    monkeypatch.setattr(models, "load_model", _no_model)
    folder = _copy(muse_folder, tmp_path)
    _edit(folder / "raw" / "forget.json", lambda rows: rows.__setitem__(slice(None), [" "] * len(rows)))
    spec = {"benchmark": "muse-tiny", "split": "news", "model": "tiny-llama", "objective": "graddiff",
            "rectifier": "none", "seed": 0, "hyperparameters": {"max_steps": 1}}
    with pytest.raises(muse_data.MuseDataError, match=r"raw/forget\.json: every document is blank"):
        commands.unlearn(spec, str(folder), "unused-target", tmp_path / "m", tmp_path / "l", tmp_path / "r")


# ---- 6. TOFU: a perturbed answer equal to the paraphrase -------------------------------------------

def _perturbed_row(**change):
    row = {"question": "Q?", "answer": "A.", "paraphrased_question": "Q2?", "paraphrased_answer": "A2.",
           "perturbed_answer": ["B.", "C."]}
    return {**row, **change}


def test_tofu_perturbed_equal_to_paraphrase_warns_naming_file_and_rows(tmp_path):
    rows = [_perturbed_row(), _perturbed_row(perturbed_answer=["B.", " A2."]), _perturbed_row(),
            _perturbed_row(paraphrased_answer="C.")]
    (tmp_path / "forget10_perturbed.json").write_text(json.dumps(rows))
    with pytest.warns(tofu.TofuDataWarning, match=r"forget10_perturbed\.json: row\(s\) 1, 3 have a perturbed answer "
                                                  r"equal to the paraphrased answer, so their truth ratio is exactly 1"):
        loaded = tofu.load_split("forget10_perturbed", tmp_path)
    assert len(loaded) == 4  # loadable: a warning, not a refusal


def test_tofu_distinct_perturbed_answers_load_silently(tmp_path, recwarn):
    (tmp_path / "retain_perturbed.json").write_text(json.dumps([_perturbed_row(), _perturbed_row()]))
    tofu.load_split("retain_perturbed", tmp_path)
    assert not [w for w in recwarn if issubclass(w.category, tofu.TofuDataWarning)]


# ---- the real data pass every check (and what they legitimately hold) -------------------------------

@pytest.mark.shared_data
def test_real_data_pass_the_new_checks():
    if not (SHARED / "muse" / "news").is_dir():
        pytest.skip(f"real data not found at {SHARED} (../shared/data is not part of the repo)")
    import warnings

    news = benchmarks.get("muse").open(SHARED / "muse").corpus("news")
    raw = news["raw/forget"]
    assert (len(raw), len(set(raw))) == (889, 858)  # the raw corpus repeats documents: allowed
    assert raw[821] == "" and len(news["knowmem/forget_qa"]) == 100
    questions = wmdp_data.load_questions(SHARED / "wmdp" / "cyber_questions.json")
    texts = [row["question"] for row in questions]
    assert len(texts) - len(set(texts)) == 3  # asked again with other choices: other items, kept
    assert texts[122] == texts[1826] and questions[122]["choices"] != questions[1826]["choices"]
    rwku = benchmarks.get("rwku").open(SHARED / "rwku")
    for target in range(1, 11):
        for name in ("positive", "forget_mia", "retain_mia", "retain_mmlu", "retain_bbh", "truthful", "triviaqa",
                     "fluency"):
            rwku.rows(target, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", tofu.TofuDataWarning)
        for split in ("forget01_perturbed", "forget05_perturbed", "forget10_perturbed", "retain_perturbed"):
            tofu.load_split(split, SHARED / "tofu")
