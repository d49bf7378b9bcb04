"""Check submitted (or produced) `metrics.json` files before they can become leaderboard rows.

Every problem is reported as `<file>: <field>: <what is wrong and how to fix it>`, all at once, so
a contributor fixes a submission in one round. Checks: strict JSON (no NaN/Infinity literals),
the result-contract schema, safe names, no markup or path tricks in any text, provenance (present,
hash format, equal to the hash of a submitted config file), metric value ranges, duplicates.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import yaml

from common import contract
from common.provenance import config_hash

CONFIG_NAMES = ("config.yaml", "config.yml", "config.json")
NAME_FIELDS = ("benchmark", "split", "model", "method", "rectifier", "parametrization")
HASH_FORMAT = re.compile(r"^sha256:[0-9a-f]{64}$")
MARKUP = re.compile(r"<\s*/?\s*[A-Za-z!?]|javascript:", re.IGNORECASE)
PARENT_SEGMENT = re.compile(r"(^|[/\\])\.\.([/\\]|$)")
ABSOLUTE_PATH = re.compile(r"^(/|~|[A-Za-z]:[\\/]|\\\\)")
# Fields that name things or point at data a submission brings: no '..' segments, no absolute paths.
PATH_CHECKED = ("identity", "provenance.source")
# Metrics that are probabilities, AUCs or fractions by definition, in every evaluator variant.
# (MUSE KnowMem/VerbMem and RWKU scores are x100 in their official variants, so they are not here.)
UNIT_INTERVAL = re.compile(
    r"^(forget_quality|model_utility|extraction_strength|exact_memorization|mmlu.*|wmdp.*)$"
    r"|(^|_)(prob|probability|truth_ratio|rouge|auc|acc|accuracy)($|_)"
)


class NonFinite:
    """Stands in for a NaN/Infinity literal so the checker can name the field it sat in."""

    def __init__(self, literal: str):
        self.literal = literal


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    documents: dict[Path, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def load_strict(path: Path) -> Any:
    """json.loads accepts NaN and Infinity; keep them visible instead of letting them through."""
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=NonFinite)


def _walk(value: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    yield where, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{where}[{index}]")


def _text_problems(document: dict[str, Any]) -> list[str]:
    problems = []
    for where, value in _walk(document):
        if isinstance(value, NonFinite):
            problems.append(f"{where}: {value.literal} is not a number; write null when a value "
                            "could not be computed")
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{where}: {value} is not a finite number")
        elif isinstance(value, str):
            if MARKUP.search(value):
                problems.append(f"{where}: {value[:60]!r} contains markup (e.g. <script>); "
                                "use plain text")
            if not where.startswith(PATH_CHECKED):
                continue  # e.g. evaluator.retain_reference legitimately records a results folder
            if PARENT_SEGMENT.search(value):
                problems.append(f"{where}: {value[:60]!r} contains a '..' path segment; "
                                "use names, not relative paths")
            if ABSOLUTE_PATH.match(value):
                problems.append(f"{where}: {value[:60]!r} is an absolute path; "
                                "do not leak local paths, use a name or a relative path")
        for key in (value.keys() if isinstance(value, dict) else ()):
            if MARKUP.search(str(key)):
                problems.append(f"{where or '<root>'}: key {str(key)[:60]!r} contains markup")
    return problems


def _name_problems(document: dict[str, Any]) -> list[str]:
    identity = document.get("identity")
    if not isinstance(identity, dict):
        return []
    problems = []
    for name in NAME_FIELDS:
        if name in identity:
            try:
                contract.check_safe_name(name, identity[name])
            except ValueError as error:
                problems.append(f"identity.{name}: {error}")
    return problems


def _provenance_problems(document: dict[str, Any], config_file: Path | None) -> list[str]:
    provenance = document.get("provenance")
    if not isinstance(provenance, dict):
        return ["provenance: missing; every row needs config_hash, code_version, libraries and "
                "hardware (common.provenance.provenance(config) writes it)"]
    declared = provenance.get("config_hash")
    if not isinstance(declared, str) or not HASH_FORMAT.match(declared):
        return [f"provenance.config_hash: {declared!r} is not 'sha256:' + 64 hex digits; "
                "use common.provenance.config_hash(config)"]
    if config_file is not None:
        try:
            text = config_file.read_text(encoding="utf-8")
            config = json.loads(text) if config_file.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as error:
            return [f"provenance.config_hash: cannot read the submitted config {config_file.name}: "
                    f"{error}"]
        actual = config_hash(config)
        if actual != declared:
            return [f"provenance.config_hash: {declared} does not match the submitted "
                    f"{config_file.name} ({actual}); submit the exact config the run used"]
    return []


def _range_problems(document: dict[str, Any]) -> list[str]:
    metrics = document.get("metrics")
    if not isinstance(metrics, dict):
        return []
    problems = []
    for name, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            if UNIT_INTERVAL.search(name) and not 0.0 <= value <= 1.0:
                problems.append(f"metrics.{name}: {value} is outside [0, 1]; this metric is a "
                                "probability / fraction, store it unscaled")
    return problems


def _schema_problems(document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(contract.schema())
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(part) for part in error.absolute_path) or "<root>"
        if error.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            where = ".".join(p for p in (where if where != "<root>" else "", *missing) if p)
            problems.append(f"{where}: missing (required by the result contract)")
        else:
            problems.append(f"{where}: {error.message[:200]}")
    return problems


def identity_key(document: dict[str, Any]) -> tuple:
    identity = document.get("identity", {})
    return tuple(identity.get(name) for name in ("benchmark", "split", "model", "role", "method",
                                                 "rectifier", "parametrization", "seed"))


def find_config(metrics_path: Path, root: Path) -> Path | None:
    """The submitted config next to the metrics file, or in a parent folder up to `root`."""
    folder = metrics_path.parent
    while True:
        for name in CONFIG_NAMES:
            if (folder / name).is_file():
                return folder / name
        if folder == root or root not in folder.parents:
            return None
        folder = folder.parent


def check_document(document: Any, config_file: Path | None = None) -> list[str]:
    """All problems of one parsed document (empty list: valid)."""
    if not isinstance(document, dict):
        return ["<root>: a metrics.json must hold a JSON object"]
    problems = _text_problems(document)
    if any(": NaN" in p or ": Infinity" in p or ": -Infinity" in p for p in problems):
        # Schema messages about the NonFinite placeholders would only repeat the same problem.
        return problems + _name_problems(document) + _provenance_problems(document, config_file)
    problems += _name_problems(document)
    problems += _provenance_problems(document, config_file)
    schema = [p for p in _schema_problems(document)
              if not any(p.split(":", 1)[0] == q.split(":", 1)[0] for q in problems)]
    return problems + schema + _range_problems(document)


def metrics_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    return sorted(p for p in path.rglob("metrics.json") if not any(
        part.startswith(".") for part in p.relative_to(path).parts))


def validate_path(path: str | Path) -> Report:
    """Validate one metrics.json or every metrics.json below a folder."""
    path = Path(path)
    root = path if path.is_dir() else path.parent
    report = Report()
    seen: dict[tuple, Path] = {}
    for file in metrics_files(path):
        shown = file.relative_to(root) if file != path else Path(file.name)
        if file.is_symlink():
            report.errors.append(f"{shown}: <file>: symbolic links are not accepted; copy the file")
            continue
        try:
            document = load_strict(file)
        except (OSError, ValueError) as error:
            report.errors.append(f"{shown}: <file>: not valid JSON ({error})")
            continue
        problems = check_document(document, find_config(file, root))
        if not problems:
            key = identity_key(document)
            if key in seen:
                problems.append(f"identity: duplicate of {seen[key].relative_to(root)} (same "
                                "benchmark, split, model, role, method, rectifier, "
                                "parametrization and seed); keep one")
            else:
                seen[key] = file
                report.documents[file] = document
        report.errors.extend(f"{shown}: {problem}" for problem in problems)
    return report
