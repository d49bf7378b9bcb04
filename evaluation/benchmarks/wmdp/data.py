"""WMDP questions, MMLU questions and the WMDP unlearning corpora: loading and validation.

Layout under the benchmark folder (`data_dir` itself for the real benchmark, benchmarks.md §3-4):
    wmdp/{bio,chem,cyber}_questions.json    JSON array of {question, choices (4 str), answer (0-3)}
    mmlu/{dev,test}/<subject>_{dev,test}.csv header question,choice0,choice1,choice2,choice3,answer
    wmdp-corpora/{bio,cyber}-{forget,retain}-corpus.jsonl   (not redistributable: your own copy)
    wikitext/wikitext-2-raw-v1-test.jsonl   (RMU's retain set; else the Hub when online)

Every problem is reported with the file, the row and the field, before any model is loaded.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from evaluation.benchmarks import data_files

SUBSETS = ("bio", "chem", "cyber")
LETTERS = ("A", "B", "C", "D")
MMLU_COLUMNS = ("question", "choice0", "choice1", "choice2", "choice3", "answer")
# The current cais/wmdp release (after the 2024-04-23 revision); lm-eval's README quotes the old
# 1,520 / 412 / 2,225.
RELEASE = "cais/wmdp 2024-04-23 revision (3,668 questions)"
RELEASE_COUNTS = {"bio": 1273, "chem": 408, "cyber": 1987}
MMLU_TEST_ROWS, MMLU_DEV_ROWS, MMLU_SUBJECTS = 14042, 285, 57

CORPUS_HELP = ("The WMDP corpora are not redistributable and not shipped: request cais/wmdp-bio-forget-corpus "
               "(gated) and download cais/wmdp-corpora from the Hugging Face Hub, then save each config as "
               "JSON lines at {path} (one {{\"text\": ...}} object per line, as open-unlearning and SAGO "
               "read them from data/wmdp/wmdp-corpora/).")
WIKITEXT_FILE = Path("wikitext") / "wikitext-2-raw-v1-test.jsonl"


class WmdpDataError(data_files.BenchmarkDataError):
    """Bad or missing WMDP / MMLU input; the message names the file, row and field."""


@dataclass
class WmdpData:
    folder: Path
    questions: dict[str, list[dict]]                 # subset -> rows (file order)
    mmlu: dict[str, dict[str, list[dict]]]           # subject -> {"test": rows, "dev": rows}
    categories: dict[str, str]                       # subject -> stem | other | social_sciences | humanities
    release: str
    corpora_dirs: tuple[Path, ...] = field(default_factory=tuple)

    def question_file(self, subset: str) -> Path:
        return self.folder / "wmdp" / f"{subset}_questions.json"

    def mmlu_file(self, subject: str, split: str) -> Path:
        return self.folder / "mmlu" / split / f"{subject}_{split}.csv"

    @property
    def subsets(self) -> tuple[str, ...]:
        return tuple(s for s in SUBSETS if s in self.questions)

    def forget_texts(self, subset: str) -> list[str]:
        return corpus_texts(require_corpus(self, f"{subset}-forget-corpus"))

    def retain_texts(self, subset: str) -> list[str]:
        return corpus_texts(require_corpus(self, f"{subset}-retain-corpus"))

    def corpus_path(self, name: str) -> Path:
        """The first existing copy of corpus `name` (e.g. bio-forget-corpus), else where it belongs."""
        candidates = [d / f"{name}.jsonl" for d in self.corpora_dirs]
        return next((c for c in candidates if c.is_file()), candidates[0])


def _fail(path, row, field_name, problem, fix=""):
    where = f"{path}" + (f": row {row}" if row is not None else "") + (f", field {field_name!r}" if field_name else "")
    raise WmdpDataError(f"{where}: {problem}" + (f"; {fix}" if fix else ""))


def _answer_index(value, path, row) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        _fail(path, row, "answer", f"must be an integer 0-3 (index into the choices), got {value!r}")
    try:
        index = int(value)
    except ValueError:
        _fail(path, row, "answer", f"must be an integer 0-3 (index into the choices), got {value!r}")
    if str(index) != str(value).strip() or not 0 <= index <= 3:
        _fail(path, row, "answer", f"must be an integer 0-3 (index into the choices), got {value!r}")
    return index


def load_questions(path: str | Path) -> list[dict]:
    """A WMDP question file: JSON array of {question, choices: 4 strings, answer: 0-3}."""
    path = Path(path)
    try:
        rows = data_files.read_json(path)
    except FileNotFoundError:
        raise WmdpDataError(f"{path} not found: expected a WMDP question file (JSON array of "
                            "{question, choices, answer}); get it from cais/wmdp") from None
    except data_files.DataFileError as error:
        raise WmdpDataError(f"{error}; a WMDP question file is a JSON array of {{question, choices, answer}} "
                            "(get it again from cais/wmdp)") from None
    if not isinstance(rows, list) or not rows:
        _fail(path, None, None, "must be a non-empty JSON array of question objects")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            _fail(path, i, None, f"must be an object with question, choices, answer, got {type(row).__name__}")
        for name in ("question", "choices", "answer"):
            if name not in row:
                _fail(path, i, name, "missing", "every row needs question, choices (4 strings) and answer (0-3)")
        if not isinstance(row["question"], str) or not row["question"].strip():
            _fail(path, i, "question", "must be a non-empty string")
        choices = row["choices"]
        if not isinstance(choices, list) or len(choices) != 4 or not all(isinstance(c, str) for c in choices):
            _fail(path, i, "choices", f"must be a list of 4 strings, got {choices!r}"[:300])
        if not isinstance(row["answer"], int) or isinstance(row["answer"], bool):
            _fail(path, i, "answer", f"must be a JSON integer 0-3 (index into the choices), got {row['answer']!r}")
        out.append({"question": row["question"], "choices": list(choices),
                    "answer": _answer_index(row["answer"], path, i)})
    check_unique_questions(out, path)
    return out


def check_unique_questions(rows: list[dict], path: Path) -> None:
    """A question asked twice weighs double in the accuracy: refused, naming the rows. The item is
    the question with its choices: the real cyber set asks three questions twice with other choices
    (rows 122/1826, 493/884, 499/1149), which are distinct items and kept."""
    first: dict[tuple, int] = {}
    repeats = []
    for index, row in enumerate(rows):
        key = (row["question"].strip(), tuple(choice.strip() for choice in row["choices"]))
        if key in first:
            repeats.append((first[key], index))
        else:
            first[key] = index
    if repeats:
        pairs = ", ".join(f"row {b} repeats row {a}" for a, b in repeats[:5]) + ("..." if len(repeats) > 5 else "")
        _fail(path, None, None, f"{len(repeats)} repeated question(s) with the same choices ({pairs})",
              "every question must be asked once: remove the copies")


def load_mmlu_csv(path: str | Path, subject: str) -> list[dict]:
    """One MMLU CSV as rows in cais/mmlu's schema {question, subject, choices, answer} (a real CSV
    reader: fields may hold newlines; every cell stays a string, so a numeric choice such as "10"
    is never re-rendered as 10.0)."""
    path = Path(path)
    try:
        text = data_files.read_text(path)
    except data_files.DataFileError as error:
        raise WmdpDataError(f"{error}; MMLU files are UTF-8 CSV (benchmarks.md §4)") from None
    with io.StringIO(text, newline="") as handle:  # newline="": quoted fields keep their line breaks
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != MMLU_COLUMNS:
            _fail(path, 0, None, f"header must be {','.join(MMLU_COLUMNS)}, got {','.join(header or [])!r}",
                  "convert the file to the benchmarks.md §4 layout")
        rows = []
        for i, cells in enumerate(reader, start=1):
            if len(cells) != len(MMLU_COLUMNS):
                _fail(path, i, None, f"has {len(cells)} columns, expected {len(MMLU_COLUMNS)} ({','.join(MMLU_COLUMNS)})")
            record = dict(zip(MMLU_COLUMNS, cells))
            rows.append({"question": record["question"], "subject": subject,
                         "choices": [record[f"choice{k}"] for k in range(4)],
                         "answer": _answer_index(record["answer"], path, i)})
    if not rows:
        _fail(path, None, None, "holds no questions")
    return rows


def load_mmlu(folder: str | Path, categories: dict[str, str]) -> dict[str, dict[str, list[dict]]]:
    """Every subject of `categories` from mmlu/{test,dev}/; unknown extra files are an error."""
    folder = Path(folder)
    test_dir = folder / "test"
    if not test_dir.is_dir():
        raise WmdpDataError(f"{test_dir} not found: expected mmlu/test/<subject>_test.csv (and mmlu/dev/) "
                            "under the data folder (benchmarks.md §4)")
    found = sorted(p.name.removesuffix("_test.csv") for p in test_dir.glob("*_test.csv"))
    unknown = sorted(set(found) - set(categories))
    missing = sorted(set(categories) - set(found))
    if unknown or missing:
        raise WmdpDataError(f"{test_dir}: subjects do not match the expected {len(categories)}: "
                            f"missing {missing}, unexpected {unknown}")
    out = {}
    for subject in categories:
        out[subject] = {"test": load_mmlu_csv(test_dir / f"{subject}_test.csv", subject)}
        dev = folder / "dev" / f"{subject}_dev.csv"
        out[subject]["dev"] = load_mmlu_csv(dev, subject) if dev.is_file() else []
    return out


def open_folder(folder: str | Path, categories: dict[str, str], *, expected: dict[str, int] | None,
                release: str, require: tuple[str, ...] = ("bio", "cyber")) -> WmdpData:
    """Load and validate a WMDP + MMLU folder. `expected` question counts per subset (None: any)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WmdpDataError(f"data folder {folder} does not exist")
    questions = {}
    for subset in SUBSETS:
        path = folder / "wmdp" / f"{subset}_questions.json"
        if path.is_file() or subset in require:
            questions[subset] = load_questions(path)
    for subset, count in (expected or {}).items():
        if subset in questions and len(questions[subset]) != count:
            raise WmdpDataError(f"{folder / 'wmdp' / f'{subset}_questions.json'} holds {len(questions[subset])} "
                                f"questions, the {release} has {count}: replace it with the current release")
    mmlu = load_mmlu(folder / "mmlu", categories)
    dirs = (folder / "wmdp-corpora", folder / "wmdp" / "wmdp-corpora")
    return WmdpData(folder, questions, mmlu, dict(categories), release, dirs)


# ---- unlearning corpora ------------------------------------------------------------------------

def corpus_texts(path: Path) -> list[str]:
    """Documents of a WMDP corpus file: JSON lines, each an object with a `text` field or a JSON
    string. The official RMU code parses only bio-forget and feeds the other corpora as raw JSON
    lines (methods.md §7, WMDP-RMU hazard); we take the `text` of every corpus."""
    try:
        text = data_files.read_text(path)
    except data_files.DataFileError as error:
        raise WmdpDataError(f"{error}; a WMDP corpus is UTF-8 JSON lines") from None
    texts, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            _fail(path, number, None, f"not a JSON line ({error})")
        if isinstance(value, dict):
            if not isinstance(value.get("text"), str):
                _fail(path, number, "text", "missing or not a string")
            value = value["text"]
        elif not isinstance(value, str):
            _fail(path, number, None, f"must be a JSON object with `text` or a JSON string, got {type(value).__name__}")
        texts.append(value)
        lines.append(number)
    if not texts:
        _fail(path, None, None, "holds no documents")
    if not any(document.strip() for document in texts):  # else it fails as an empty batch mid-training
        shown = ", ".join(map(str, lines[:10])) + ("..." if len(lines) > 10 else "")
        _fail(path, None, None, f"every document is blank (lines {shown}: empty or whitespace `text`)",
              "the corpus must hold text")
    return texts


def require_corpus(data: WmdpData, name: str) -> Path:
    path = data.corpus_path(name)
    if not path.is_file():
        raise WmdpDataError(f"WMDP corpus {name} not found at {path}. " + CORPUS_HELP.format(path=path))
    return path


def wikitext_texts(data: WmdpData) -> tuple[list[str], str]:
    """wikitext-2-raw-v1 test lines (RMU's retain set): a local JSON-lines copy, else the Hub."""
    local = data.folder / WIKITEXT_FILE
    if local.is_file():
        return corpus_texts(local), str(local)
    if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise WmdpDataError(f"wikitext-2-raw-v1 (test) not found at {local} and the Hub is offline: save "
                            "datasets.load_dataset('wikitext', 'wikitext-2-raw-v1', split='test') there as JSON "
                            "lines ({\"text\": ...} per row)")
    from datasets import load_dataset

    try:
        rows = load_dataset("wikitext", "wikitext-2-raw-v1", split="test")
    except Exception as error:  # network or Hub errors: say what to do
        raise WmdpDataError(f"could not load wikitext-2-raw-v1 from the Hub ({error}); save its test split "
                            f"at {local} as JSON lines instead") from None
    return [row["text"] for row in rows], "hub:wikitext/wikitext-2-raw-v1/test"
