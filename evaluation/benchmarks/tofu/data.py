"""TOFU data by split name: from the Hub (`locuslab/TOFU`) or a local folder in the official schema.

Local files come in three layouts (benchmarks.md §7): one JSON array, JSON lines, or several JSON
arrays one per line (the HF export of full/retainXX). Row order is preserved because the relations
forgetXX = tail of full and retainXX = head of full depend on it; they are checked at load time.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from evaluation.benchmarks import data_files

HUB_ID = "locuslab/TOFU"
PERCENTS = ("01", "05", "10")

QA_FIELDS = ("question", "answer")
PERTURBED_FIELDS = ("question", "answer", "paraphrased_question", "paraphrased_answer", "perturbed_answer")
OPTION_FIELDS = ("question", "option1", "option2", "option3", "option4", "answer")
OPTIONS_PERTURBED_FIELDS = ("question", "answer", "perturbed_answer")

SPLIT_FIELDS: dict[str, tuple[str, ...]] = {
    "full": QA_FIELDS,
    **{f"retain{100 - int(p)}": QA_FIELDS for p in PERCENTS},
    **{f"forget{p}": QA_FIELDS for p in PERCENTS},
    **{f"forget{p}_perturbed": PERTURBED_FIELDS for p in PERCENTS},
    "retain_perturbed": PERTURBED_FIELDS,
    "real_authors": OPTION_FIELDS,
    "world_facts": OPTION_FIELDS,
    "real_authors_perturbed": OPTIONS_PERTURBED_FIELDS,
    "world_facts_perturbed": OPTIONS_PERTURBED_FIELDS,
    **{f"holdout{p}": QA_FIELDS for p in PERCENTS},
}
SPLITS = tuple(SPLIT_FIELDS)
PERTURBATIONS = {"forget": 5, "retain": 5, "real_authors": 3, "world_facts": 3}

# Official row counts (benchmarks.md §1); tofu-tiny has its own, recorded in its manifest.
OFFICIAL_COUNTS = {
    "full": 4000, "retain90": 3600, "retain95": 3800, "retain99": 3960,
    "forget01": 40, "forget05": 200, "forget10": 400,
    "forget01_perturbed": 40, "forget05_perturbed": 200, "forget10_perturbed": 400,
    "retain_perturbed": 400, "real_authors": 100, "world_facts": 117,
    "real_authors_perturbed": 100, "world_facts_perturbed": 117,
    "holdout01": 40, "holdout05": 200, "holdout10": 400,
}


class TofuDataError(data_files.BenchmarkDataError):
    """A TOFU file is missing or does not follow the official schema."""


class TofuDataWarning(UserWarning):
    """A TOFU file that loads but would give a meaningless number for some rows."""


def _schema_hint(split: str) -> str:
    fields = ", ".join(SPLIT_FIELDS[split])
    return (f"expected {split}.json holding rows with fields {{{fields}}} (a JSON array, JSON lines, "
            f"or one JSON array per line); get it from the Hugging Face dataset {HUB_ID} "
            f"(config {split!r}) or generate a synthetic set with "
            "`ubench data generate --benchmark tofu-tiny --out DIR`")


def _check_rows(split: str, rows: list, origin: str) -> list[dict]:
    needed = SPLIT_FIELDS[split]
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TofuDataError(f"{origin}: row {index} is {type(row).__name__}, not an object; "
                                + _schema_hint(split))
        missing = [name for name in needed if name not in row]
        if missing:
            raise TofuDataError(f"{origin}: row {index} lacks {missing}; " + _schema_hint(split))
        if "perturbed_answer" in needed and not isinstance(row["perturbed_answer"], list):
            raise TofuDataError(f"{origin}: row {index} perturbed_answer must be a list of strings; "
                                + _schema_hint(split))
        problem = _text_problem(row, needed)
        if problem:
            raise TofuDataError(f"{origin}: row {index} {problem}; " + _schema_hint(split))
    _warn_perturbed_equals_paraphrase(rows, needed, origin)
    return [{name: row[name] for name in needed} for row in rows]


def _warn_perturbed_equals_paraphrase(rows: list[dict], needed: tuple[str, ...], origin: str) -> None:
    """A perturbed answer equal to the paraphrased answer makes that row's truth ratio exactly 1 for
    every model (no signal, yet it counts in the mean): loadable, but said at load time. Not refused:
    the official evaluator scores such a row too, and the official release has none."""
    if "paraphrased_answer" not in needed:
        return
    same = [index for index, row in enumerate(rows)
            if any(answer.strip() == row["paraphrased_answer"].strip() for answer in row["perturbed_answer"])]
    if same:
        shown = ", ".join(map(str, same[:10])) + (f", ... ({len(same)} rows)" if len(same) > 10 else "")
        warnings.warn(f"{origin}: row(s) {shown} have a perturbed answer equal to the paraphrased answer, so "
                      "their truth ratio is exactly 1.0 whatever the model; replace those perturbed answers "
                      "with wrong ones", TofuDataWarning, stacklevel=2)


def _text_problem(row: dict, needed: tuple[str, ...]) -> str | None:
    """Every text field a non-empty string; perturbed answers strings that differ from the answer
    (an empty or true 'perturbed' answer would silently change truth ratio and MU)."""
    for name in needed:
        if name == "perturbed_answer":
            continue
        if not isinstance(row[name], str) or not row[name].strip():
            return f"{name} must be a non-empty string, got {row[name]!r:.60}"
    if "perturbed_answer" not in needed:
        return None
    perturbed = row["perturbed_answer"]
    if not perturbed:
        return "perturbed_answer is an empty list; give at least one wrong answer"
    for position, answer in enumerate(perturbed):
        if not isinstance(answer, str):
            return f"perturbed_answer[{position}] is {type(answer).__name__}, not a string"
        if not answer.strip():
            return f"perturbed_answer[{position}] is empty"
        if answer.strip() == row["answer"].strip():
            return f"perturbed_answer[{position}] equals the true answer; a perturbed answer must be wrong"
    return None


def load_split(split: str, source: str | Path | None = None) -> list[dict]:
    """Rows of one TOFU split, from a local folder (`source`) or the Hub (`source=None`)."""
    if split not in SPLIT_FIELDS:
        raise ValueError(f"unknown TOFU split {split!r}; available: {', '.join(SPLITS)}")
    if source is None:
        import datasets  # Hub path: cannot be exercised offline, kept for real runs

        rows = list(datasets.load_dataset(HUB_ID, split, split="train"))
        return _check_rows(split, rows, f"{HUB_ID}:{split}")
    folder = Path(source)
    path = folder / f"{split}.json"
    if not path.is_file():
        raise TofuDataError(f"{path} not found; " + _schema_hint(split))
    try:
        rows = data_files.read_json_rows(path)
    except data_files.DataFileError as error:
        raise TofuDataError(f"{error}; " + _schema_hint(split)) from None
    return _check_rows(split, rows, str(path))


def load_idontknow(source: str | Path) -> list[str]:
    """`idontknow.jsonl`: plain refusal lines (not JSON despite the extension)."""
    path = Path(source) / "idontknow.jsonl"
    if not path.is_file():
        raise TofuDataError(f"{path} not found; expected plain-text refusal lines, one per line "
                            "(locuslab/tofu data/idontknow.jsonl)")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _qa(rows: list[dict]) -> list[tuple[str, str]]:
    return [(row["question"], row["answer"]) for row in rows]


def percent_size(total: int, percent: str) -> int:
    return round(total * int(percent) / 100)


@dataclass
class TofuData:
    """All splits of one TOFU-format folder (or the Hub), loaded lazily and checked on demand."""

    source: str | Path | None = None
    expected_counts: dict[str, int] | None = None
    _cache: dict[str, list[dict]] = field(default_factory=dict, repr=False)

    def __getitem__(self, split: str) -> list[dict]:
        if split not in self._cache:
            rows = load_split(split, self.source)
            expected = (self.expected_counts or {}).get(split)
            if expected is not None and len(rows) != expected:
                raise TofuDataError(f"{self.where(split)} has {len(rows)} rows, expected {expected}; "
                                    "the file is truncated or from another release")
            self._cache[split] = rows
        return self._cache[split]

    def where(self, split: str) -> str:
        return f"{HUB_ID}:{split}" if self.source is None else str(Path(self.source) / f"{split}.json")

    @cached_property
    def is_local(self) -> bool:
        return self.source is not None

    def validate(self) -> None:
        """Check the documented relations between splits (benchmarks.md §1); raise on mismatch."""
        full = _qa(self["full"])
        full_questions = {q for q, _ in full}
        for percent in PERCENTS:
            forget, retain = _qa(self[f"forget{percent}"]), _qa(self[f"retain{100 - int(percent)}"])
            size = percent_size(len(full), percent)
            if len(forget) != size:
                raise TofuDataError(f"{self.where(f'forget{percent}')} has {len(forget)} rows; "
                                    f"expected {percent}% of full = {size}")
            if forget != full[len(full) - size:]:
                raise TofuDataError(f"forget{percent} is not the last {size} rows of full")
            if retain != full[: len(full) - size]:
                raise TofuDataError(f"retain{100 - int(percent)} is not full minus its last {size} rows")
            if _qa(self[f"forget{percent}_perturbed"]) != forget:
                raise TofuDataError(f"forget{percent}_perturbed question/answer differ from forget{percent}")
            holdout = _qa(self[f"holdout{percent}"])
            if len(holdout) != size:
                raise TofuDataError(f"holdout{percent} has {len(holdout)} rows; expected {size} like forget{percent}")
            if full_questions & {q for q, _ in holdout}:
                raise TofuDataError(f"holdout{percent} shares questions with full; holdout must be unseen")
        retain_perturbed = _qa(self["retain_perturbed"])
        if retain_perturbed != full[: len(retain_perturbed)]:
            raise TofuDataError("retain_perturbed is not the first rows of full")
        for name in ("real_authors", "world_facts"):
            if _qa(self[name]) != _qa(self[f"{name}_perturbed"]):
                raise TofuDataError(f"{name} question/answer differ from {name}_perturbed")
        for name, count in PERTURBATIONS.items():
            split = {"forget": "forget10_perturbed", "retain": "retain_perturbed"}.get(name, f"{name}_perturbed")
            bad = [i for i, row in enumerate(self[split]) if len(row["perturbed_answer"]) != count]
            if bad:
                raise TofuDataError(f"{self.where(split)} row {bad[0]} has "
                                    f"{len(self[split][bad[0]]['perturbed_answer'])} perturbed answers, expected {count}")

    def load_all(self) -> dict[str, list[dict]]:
        return {split: self[split] for split in SPLITS}


def official(source: str | Path | None = None) -> TofuData:
    """TOFU with the official row counts enforced."""
    return TofuData(source, expected_counts=OFFICIAL_COUNTS)


def vocabulary_texts(data) -> list[str]:
    """Every string of a TOFU-format dataset (all splits) plus the prompt tags, for the vocabulary."""
    texts = ["Question: Answer:", "[INST] [/INST]"]
    for rows in data.load_all().values():
        for row in rows:
            for value in row.values():
                texts.extend(value if isinstance(value, list) else [str(value)])
    return texts
