"""RWKU data: the `<id>_<Name>` target folders, their files, and validation (benchmarks.md §6).

A folder holds one target's JSON arrays: intro, forget_level1-3, neighbor_level1-2 and passage for
every target; forget_mia, retain_mia, positive and the utility sets (retain_mmlu, retain_bbh,
truthful, triviaqa, fluency) where the copy has them (locally: targets 1-10). Folder names keep
RWKU's spelling: commas, dots, hyphens and NFC non-ASCII characters (`24_Beyoncé`); they are
matched by the numeric id before the first underscore, so no name is ever re-typed.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from evaluation.benchmarks import data_files

HUB_ID = "jinzhuoran/RWKU"
NUM_TARGETS = 200
PROBE_FILES = ("forget_level1", "forget_level2", "forget_level3", "neighbor_level1", "neighbor_level2")
CORE_FILES = ("intro", *PROBE_FILES, "passage")
MIA_FILES = ("forget_mia", "retain_mia")
UTILITY_FILES = ("retain_mmlu", "retain_bbh", "truthful", "triviaqa", "fluency")
OPTIONAL_FILES = (*MIA_FILES, "positive", *UTILITY_FILES)
FOLDER = re.compile(r"^(\d+)_(.+)$")

LEVEL1_TYPES = {"cloze"}
LEVEL2_TYPES = {"simple question", "multiple choice"}
LEVEL3_TYPES = {"prefix injection", "reverse query", "multiple choice", "context hint", "role play",
                "synonym manipulation", "incontext learning", "affirmative suffix"}
CROSS_LINGUAL = re.compile(r"^cross[ -]lingual\b", re.IGNORECASE)  # spelling varies in the release

REQUIRED_FIELDS = {
    "forget_level1": ("subject", "level", "type", "query", "answer"),
    "forget_level2": ("subject", "level", "type", "query", "answer"),
    "forget_level3": ("subject", "level", "type", "query", "answer"),
    "neighbor_level1": ("subject", "level", "type", "query", "answer"),
    "neighbor_level2": ("subject", "level", "type", "query", "answer"),
    "passage": ("text",),
    "positive": ("text",),
    "forget_mia": ("text",),
    "retain_mia": ("text",),
    "retain_mmlu": ("task", "question", "choices", "answer", "examples"),
    "retain_bbh": ("task", "question", "answer", "cot"),
    "truthful": ("question", "mc1_targets", "mc2_targets"),
    "triviaqa": ("question", "answers"),
    "fluency": ("instruction",),
    "intro": ("target", "intro"),
}

# The type each field must have, so a wrong one is refused at load and never reaches a scorer after
# the evaluation (`answer: 42`). TEXT: a non-empty string (an empty answer or query would be scored,
# an empty passage trained on); STRING: any string (the Hub release carries no intro: ""); TEXTS: a
# non-empty list of non-empty strings; STRINGS: a non-empty list of strings. retain_mmlu's answer,
# its examples and TruthfulQA's targets have their own checks in `validate_rows`.
TEXT, STRING, TEXTS, STRINGS = "a non-empty string", "a string", "a non-empty list of non-empty strings", \
    "a non-empty list of strings"
FIELD_TYPES = {
    **{name: {"subject": TEXT, "type": TEXT, "query": TEXT, "answer": TEXT, "neighbor": TEXT} for name in PROBE_FILES},
    **{name: {"text": TEXT} for name in ("passage", "positive", *MIA_FILES)},
    "retain_mmlu": {"task": STRING, "question": TEXT, "choices": STRINGS, "examples": "a list of objects"},
    "retain_bbh": {"task": STRING, "question": TEXT, "answer": TEXT, "cot": STRING},
    "truthful": {"question": TEXT},
    "triviaqa": {"question": TEXT, "answers": TEXTS},
    "fluency": {"instruction": TEXT},
    "intro": {"target": TEXT, "intro": STRING},
}


class RwkuDataError(data_files.BenchmarkDataError):
    """Bad or missing RWKU data; the message names the file, row or target id."""


def check_probe_type(level: int, probe_type: str, where: str) -> None:
    allowed = {1: LEVEL1_TYPES, 2: LEVEL2_TYPES, 3: LEVEL3_TYPES}[level]
    if probe_type in allowed or (level == 3 and CROSS_LINGUAL.match(probe_type)):
        return
    raise RwkuDataError(f"{where}: unknown level-{level} probe type {probe_type!r}; expected one of "
                        f"{sorted(allowed) + (['cross lingual (...)'] if level == 3 else [])}")


@dataclass
class Target:
    id: int
    name: str          # as spelled in the folder name (NFC)
    folder: Path

    @property
    def subject(self) -> str:
        return self.name.replace("_", " ")


@dataclass
class RwkuData:
    """Lazy, cached access to the per-target files of one RWKU copy (or the tiny twin)."""

    root: Path
    targets: dict[int, Target]
    source: str = "local"
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_folder(cls, root: str | Path, *, expected_targets: int | None = NUM_TARGETS) -> "RwkuData":
        root = Path(root)
        if not root.is_dir():
            raise RwkuDataError(f"RWKU folder {root} does not exist: pass the folder holding the "
                                "<id>_<Name> target folders (e.g. ../shared/data/rwku)")
        targets: dict[int, Target] = {}
        for entry in sorted(root.iterdir()):
            match = FOLDER.match(entry.name)
            if not entry.is_dir() or not match:
                continue
            target_id = int(match.group(1))
            if target_id in targets:
                raise RwkuDataError(f"{root}: two folders for target {target_id}: "
                                    f"{targets[target_id].folder.name!r} and {entry.name!r}")
            targets[target_id] = Target(target_id, unicodedata.normalize("NFC", match.group(2)), entry)
        if not targets:
            raise RwkuDataError(f"{root} holds no <id>_<Name> target folders")
        if expected_targets is not None and sorted(targets) != list(range(1, expected_targets + 1)):
            raise RwkuDataError(_target_mismatch(root, targets, expected_targets))
        return cls(root, targets, str(root))

    # ---- access -------------------------------------------------------------------------------
    @property
    def num_targets(self) -> int:
        return max(self.targets)

    def target(self, target_id: int) -> Target:
        try:
            return self.targets[target_id]
        except KeyError:
            raise RwkuDataError(f"RWKU target id {target_id} is out of range: {self.source} has targets "
                                f"1..{self.num_targets}") from None

    def path(self, target_id: int, name: str) -> Path:
        return self.target(target_id).folder / f"{name}.json"

    def has(self, target_id: int, name: str) -> bool:
        return self.path(target_id, name).is_file()

    def rows(self, target_id: int, name: str) -> list[dict]:
        """The rows of one file of one target, validated (fields, levels, probe types)."""
        key = (target_id, name)
        if key not in self._cache:
            path = self.path(target_id, name)
            if not path.is_file():
                hint = (" (locally the utility, MIA and positive files exist for targets 1-10 only)"
                        if name in OPTIONAL_FILES else "")
                raise RwkuDataError(f"RWKU file {path} is missing for target {target_id}{hint}")
            self._cache[key] = validate_rows(load_json_rows(path), name, path)
        return self._cache[key]

    def rows_for(self, target_ids, name: str) -> list[dict]:
        return [row for target_id in target_ids for row in self.rows(target_id, name)]

    def texts(self, target_ids, name: str) -> tuple[str, ...]:
        return tuple(row["text"] for row in self.rows_for(target_ids, name))

    def validate(self) -> "RwkuData":
        """Every target's core files, and the optional ones it has, parse and carry their fields and
        types: a bad utility or MIA row is refused when the data are opened, before any model loads,
        not by a scorer after the evaluation."""
        for target_id in self.targets:
            for name in CORE_FILES:
                self.rows(target_id, name)
            for name in OPTIONAL_FILES:
                if self.has(target_id, name):
                    self.rows(target_id, name)
        return self


def _target_mismatch(root: Path, targets: dict[int, Target], expected: int) -> str:
    """Which ids are missing and which folders are extra, e.g. a copied `201_Someone`."""
    missing = sorted(set(range(1, expected + 1)) - set(targets))
    extra = sorted(set(targets) - set(range(1, expected + 1)))
    parts = []
    if missing:
        parts.append(f"missing ids {missing[:10]}{'...' if len(missing) > 10 else ''}")
    if extra:
        names = [targets[i].folder.name for i in extra]
        parts.append(f"unexpected folder(s) {names[:10]}{'...' if len(names) > 10 else ''}: move them out of "
                     f"{root} (ids must run 1..{expected})")
    return f"{root}: expected target folders 1..{expected}; " + "; ".join(parts)


def load_json_rows(path: Path) -> list[dict]:
    """A JSON array, JSON lines, or one JSON array per line; order preserved."""
    try:
        return data_files.read_json_rows(path)
    except data_files.DataFileError as error:
        raise RwkuDataError(f"{error}; RWKU files are JSON arrays of objects (benchmarks.md §6)") from None


def _type_problem(value, kind: str) -> bool:
    if kind == TEXT:
        return not (isinstance(value, str) and value.strip())
    if kind == STRING:
        return not isinstance(value, str)
    if kind in (TEXTS, STRINGS):
        blank_ok = kind == STRINGS
        return not (isinstance(value, list) and value
                    and all(isinstance(item, str) and (blank_ok or item.strip()) for item in value))
    return not (isinstance(value, list) and all(isinstance(item, dict) for item in value))


def _check_types(row: dict, name: str, where: str) -> None:
    for field_name, kind in FIELD_TYPES.get(name, {}).items():
        if field_name in row and _type_problem(row[field_name], kind):
            raise RwkuDataError(f"{where}: field {field_name!r} must be {kind}, got {row[field_name]!r:.80}")


def _check_mmlu_item(item: dict, where: str) -> None:
    """A retain_mmlu question or one of its few-shot examples: choices and an int index into them."""
    choices = item.get("choices")
    if _type_problem(choices, STRINGS):
        raise RwkuDataError(f"{where}: field 'choices' must be {STRINGS}, got {choices!r:.80}")
    answer = item.get("answer")
    if isinstance(answer, bool) or not (isinstance(answer, int) and 0 <= answer < len(choices)):
        raise RwkuDataError(f"{where}: answer must be an int index into choices, got {answer!r}")


def validate_rows(rows: list, name: str, path: Path) -> list[dict]:
    fields = REQUIRED_FIELDS.get(name, ())
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise RwkuDataError(f"{path}, row {index}: expected an object, got {type(row).__name__}")
        missing = [f for f in fields if f not in row]
        if missing:
            raise RwkuDataError(f"{path}, row {index}: missing field(s) {missing}")
        _check_types(row, name, f"{path}, row {index}")
        if name in PROBE_FILES:
            level = int(name[-1])
            if str(row["level"]) != str(level):
                raise RwkuDataError(f"{path}, row {index}: level {row['level']!r} in a level-{level} file")
            check_probe_type(level, row["type"], f"{path}, row {index}")
        if name == "retain_mmlu":
            _check_mmlu_item(row, f"{path}, row {index}")
            for shot, example in enumerate(row["examples"]):
                if "question" not in example or _type_problem(example["question"], TEXT):
                    raise RwkuDataError(f"{path}, row {index}, examples[{shot}]: field 'question' must be {TEXT}")
                _check_mmlu_item(example, f"{path}, row {index}, examples[{shot}]")
        if name == "truthful":
            for key in ("mc1_targets", "mc2_targets"):
                targets = row[key]
                if not (isinstance(targets, dict) and not _type_problem(targets.get("choices"), STRINGS)
                        and isinstance(targets.get("labels"), list) and len(targets["choices"]) == len(targets["labels"])
                        and 1 in targets["labels"] and 0 in targets["labels"]):
                    raise RwkuDataError(f"{path}, row {index}: {key} must be a dict of equal-length choices and "
                                        "labels with at least one true (1) and one false (0) answer")
    if not rows and name in CORE_FILES:
        raise RwkuDataError(f"{path} is empty")
    return rows


def from_hub(cache_dir: str | None = None) -> RwkuData:  # pragma: no cover - needs the Hugging Face Hub
    """Real users: the Hub release (`load_dataset("jinzhuoran/RWKU", <config>)`), written once into the
    local `<id>_<Name>` layout so the same loader and validation serve both."""
    import tempfile

    from datasets import load_dataset

    root = Path(cache_dir or tempfile.mkdtemp(prefix="rwku-hub-"))
    names = [row["target"] for row in load_dataset(HUB_ID, "forget_target")["train"]]
    folders = {name: root / f"{i}_{name.replace(' ', '_')}" for i, name in enumerate(names, 1)}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    # Hub config -> (split, local file name); configs as listed in the RWKU README (the passage
    # config name is the one LLaMA-Factory's dataset_info uses for GA-passage).
    configs = {**{name: ("test", name) for name in PROBE_FILES},
               "mia_forget": ("test", "forget_mia"), "mia_retain": ("test", "retain_mia"),
               "utility_general": ("test", "retain_mmlu"), "utility_reason": ("test", "retain_bbh"),
               "utility_truthfulness": ("test", "truthful"), "utility_factuality": ("test", "triviaqa"),
               "utility_fluency": ("test", "fluency"), "train_positive_llama3": ("train", "positive"),
               "train_original_passage": ("train", "passage")}
    for config, (split, file_name) in configs.items():
        per_target: dict[str, list] = {}
        for row in load_dataset(HUB_ID, config)[split]:
            per_target.setdefault(row.get("subject") or row.get("target"), []).append(dict(row))
        for name, rows in per_target.items():
            if name in folders:
                (folders[name] / f"{file_name}.json").write_text(json.dumps(rows), encoding="utf-8")
    for name, folder in folders.items():
        (folder / "intro.json").write_text(json.dumps([{"target": name, "intro": ""}]), encoding="utf-8")
    data = RwkuData.from_folder(root)
    data.source = f"hub:{HUB_ID}"
    return data
