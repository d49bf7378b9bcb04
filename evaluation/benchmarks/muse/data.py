"""MUSE data: one corpus folder (News, Books, or the muse-tiny twin) in MUSE's layout, validated.

Layout (benchmarks.md §2; the Hub dataset muse-bench/MUSE-{News,Books} has the same configs):
    raw/{forget, retain1, retain2, holdout}.json        lists of documents (strings)
    knowmem/{forget_qa, forget_qa_icl, retain_qa, retain_qa_icl}.json   lists of {question, answer}
    verbmem/forget.json                                 list of {prompt, gt}
    privleak/{forget, retain, holdout}.json             lists of strings
The local News copy lacks raw/retain1, retain2 and holdout; raw/retain_standin.json (a non-official
stand-in, disjoint from raw/forget) replaces retain1 for unlearning and is labelled so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evaluation.benchmarks import data_files

EVAL_FILES = {  # file -> (kind, fields)
    "knowmem/forget_qa": ("qa", ("question", "answer")),
    "knowmem/forget_qa_icl": ("qa", ("question", "answer")),
    "knowmem/retain_qa": ("qa", ("question", "answer")),
    "knowmem/retain_qa_icl": ("qa", ("question", "answer")),
    "verbmem/forget": ("completion", ("prompt", "gt")),
    "privleak/forget": ("text", ()),
    "privleak/retain": ("text", ()),
    "privleak/holdout": ("text", ()),
}
OFFICIAL_COUNTS = {"knowmem/forget_qa": 100, "knowmem/forget_qa_icl": 10, "knowmem/retain_qa": 100,
                   "knowmem/retain_qa_icl": 10, "verbmem/forget": 100, "privleak/forget": 100,
                   "privleak/retain": 100, "privleak/holdout": 100}
RETAIN_FILES = ("raw/retain1", "raw/retain_standin")  # first present wins
STANDIN = "raw/retain_standin"
HUB_CONFIGS = {"raw": ("forget", "retain1", "retain2", "holdout"),
               "knowmem": ("forget_qa", "forget_qa_icl", "retain_qa", "retain_qa_icl"),
               "verbmem": ("forget",), "privleak": ("forget", "retain", "holdout")}


class MuseDataError(data_files.BenchmarkDataError):
    """A MUSE file that is missing, malformed or of the wrong size (the message names file and field)."""


def _read_json(path: Path):
    if not path.is_file():
        raise MuseDataError(f"{path} not found (MUSE layout: raw/, knowmem/, verbmem/, privleak/; "
                            "see docs or /work/shared/data/README.md)")
    try:
        return data_files.read_json(path)
    except data_files.DataFileError as error:
        raise MuseDataError(f"{error}; MUSE files are JSON lists (get them again from muse-bench/MUSE-News or "
                            "regenerate muse-tiny)") from None


def check_rows(rows, kind: str, fields: tuple[str, ...], where: str, *, allow_empty: bool = False) -> None:
    """Every row of a MUSE file has the right shape: strings, or dicts of non-empty string fields.
    Raw corpora may hold empty documents (MUSE-News raw/forget row 821 is ""): `allow_empty`."""
    if not isinstance(rows, list):
        raise MuseDataError(f"{where}: expected a JSON list, got {type(rows).__name__}")
    for index, row in enumerate(rows):
        if kind == "text":
            if not isinstance(row, str) or not (allow_empty or row.strip()):
                raise MuseDataError(f"{where} row {index}: expected a non-empty string, got {row!r:.60}")
            continue
        if not isinstance(row, dict):
            raise MuseDataError(f"{where} row {index}: expected an object with fields {list(fields)}")
        for name in fields:
            if name not in row:
                raise MuseDataError(f"{where} row {index}: missing field {name!r} (has {sorted(row)})")
            if not isinstance(row[name], str) or not row[name].strip():
                raise MuseDataError(f"{where} row {index}: field {name!r} must be a non-empty string")


def _item_key(row, kind: str) -> str:
    """What makes an eval item itself: the question, the VerbMem prompt, the PrivLeak text."""
    if kind == "qa":
        return row["question"].strip()
    if kind == "completion":
        return row["prompt"].strip()
    return row.strip()


def check_unique(rows: list, kind: str, where: str) -> None:
    """An eval item given twice weighs double in its mean (and a PrivLeak text twice in the AUC):
    refused, naming the rows. Raw corpora may repeat documents (MUSE-News raw/forget holds 889
    documents, 858 distinct), so only eval files are checked."""
    first: dict[str, int] = {}
    repeats = []
    for index, row in enumerate(rows):
        key = _item_key(row, kind)
        if key in first:
            repeats.append((first[key], index))
        else:
            first[key] = index
    if repeats:
        what = {"qa": "question", "completion": "prompt"}.get(kind, "text")
        pairs = ", ".join(f"row {b} repeats row {a}" for a, b in repeats[:5]) + ("..." if len(repeats) > 5 else "")
        raise MuseDataError(f"{where}: {len(repeats)} repeated {what}(s) ({pairs}; first: "
                            f"{_item_key(rows[repeats[0][1]], kind)!r:.60}); every eval item must be unique: "
                            "remove the copies")


def check_corpus_text(rows: list, where: str) -> None:
    """A raw corpus must hold some text: single empty documents are kept (MUSE-News raw/forget row 821
    is ""), but a corpus of only blank documents is refused here, not as an empty batch mid-training."""
    if not rows:
        raise MuseDataError(f"{where}: holds no documents; a MUSE raw corpus is a JSON list of texts")
    if not any(text.strip() for text in rows):
        shown = "0" if len(rows) == 1 else f"0-{len(rows) - 1}"
        raise MuseDataError(f"{where}: every document is blank (rows {shown}, all {len(rows)} empty or "
                            "whitespace); the corpus must hold text")


@dataclass
class MuseData:
    """The files of one MUSE corpus, loaded and validated. `rows[name]` is a list; `where(name)`
    says where it came from."""

    corpus: str                    # news | books | tiny
    location: str                  # folder or Hub id
    rows: dict[str, list] = field(default_factory=dict)
    expected_counts: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, name: str) -> list:
        try:
            return self.rows[name]
        except KeyError:
            raise MuseDataError(f"{self.location}: no {name}.json") from None

    def where(self, name: str) -> str:
        return f"{self.location}/{name}.json"

    @property
    def retain_file(self) -> str:
        for name in RETAIN_FILES:
            if name in self.rows:
                return name
        raise MuseDataError(f"{self.location}: neither raw/retain1.json nor raw/retain_standin.json exists; "
                            "unlearning needs a retain corpus")

    @property
    def retain_official(self) -> bool:
        return self.retain_file != STANDIN

    def head(self, items: int) -> "MuseData":
        """The first `items` rows of every scored eval file (ICL sets and raw corpora whole): a fixed
        subset for quick checks; its `location` says so."""
        rows = {name: (list(value) if name.endswith("_icl") or name.startswith("raw/") else list(value[:items]))
                for name, value in self.rows.items()}
        return MuseData(self.corpus, f"{self.location} (first {items} items per eval file)", rows, {})

    def validate(self) -> None:
        for name, (kind, fields) in EVAL_FILES.items():
            check_rows(self[name], kind, fields, self.where(name))
            check_unique(self[name], kind, self.where(name))
            expected = self.expected_counts.get(name)
            if expected is not None and len(self[name]) != expected:
                raise MuseDataError(f"{self.where(name)}: {len(self[name])} rows, expected {expected} "
                                    f"(MUSE-{self.corpus} count)")
        for name in [n for n in self.rows if n.startswith("raw/")]:
            check_rows(self[name], "text", (), self.where(name), allow_empty=True)
            check_corpus_text(self[name], self.where(name))
        for name, expected in self.expected_counts.items():
            if name not in EVAL_FILES and len(self[name]) != expected:
                raise MuseDataError(f"{self.where(name)}: {len(self[name])} rows, expected {expected}")
        self["raw/forget"]  # noqa: B018 - raises when the forget corpus is missing
        self.retain_file  # noqa: B018 - raises when no retain corpus exists


def load_folder(folder: str | Path, corpus: str, expected_counts: dict[str, int]) -> MuseData:
    """Read a MUSE corpus folder; raw files other than forget are optional (the local News copy)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MuseDataError(f"MUSE-{corpus} folder {folder} not found")
    rows = {name: _read_json(folder / f"{name}.json") for name in EVAL_FILES}
    rows["raw/forget"] = _read_json(folder / "raw/forget.json")
    for name in ("raw/retain1", "raw/retain2", "raw/holdout", STANDIN):
        if (folder / f"{name}.json").is_file():
            rows[name] = _read_json(folder / f"{name}.json")
    data = MuseData(corpus, str(folder), rows, expected_counts)
    data.validate()
    return data


def load_hub(hub_id: str, corpus: str) -> MuseData:
    """The Hub copy (muse-bench/MUSE-News or MUSE-Books), for users with Hub access."""
    from datasets import load_dataset

    rows = {}
    for config, splits in HUB_CONFIGS.items():
        for split in splits:
            part = load_dataset(hub_id, config, split=split)
            if config in ("raw", "privleak"):
                rows[f"{config}/{split}"] = list(part["text"])
            else:
                rows[f"{config}/{split}"] = [dict(row) for row in part]
    data = MuseData(corpus, hub_id, rows, OFFICIAL_COUNTS)
    data.validate()
    return data
