"""Check submitted (or produced) `metrics.json` files before they can become leaderboard rows.

Every problem is reported as `<file>: <field>: <what is wrong and how to fix it>`, all at once, so
a contributor fixes a submission in one round. Checks: no symbolic links anywhere (refused
without being followed), file size caps, strict JSON (no NaN/Infinity literals, no duplicate
keys, bounded nesting), the result-contract schema, safe names, no control or non-printing
characters, no markup or path tricks in any text, metric names without the ':' that the table
reserves for its own columns, provenance (present, hash format, equal to the hash of a submitted
config file, whose YAML is parsed with bounded alias expansion, depth and time: `bounded_yaml`),
metric value ranges (each metric's declared `bounds`), duplicates, and one run's results relabelled
as another seed.
Text from a submission is never echoed raw: file names and values go through `shown()`.
"""
from __future__ import annotations

import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import yaml

from common import contract
from common.provenance import config_hash
from leaderboard import bounded_yaml, near_duplicates, submission

CONFIG_NAMES = ("config.yaml", "config.yml", "config.json")
NAME_FIELDS = ("benchmark", "split", "model", "method", "rectifier", "parametrization", "submitter")
HASH_FORMAT = re.compile(r"^sha256:[0-9a-f]{64}$")
MARKUP = re.compile(r"<\s*/?\s*[A-Za-z!?]|javascript:", re.IGNORECASE)
PARENT_SEGMENT = re.compile(r"(^|[/\\])\.\.([/\\]|$)")
ABSOLUTE_PATH = re.compile(r"^(/|~|[A-Za-z]:[\\/]|\\\\)")
MAX_FILE_BYTES = 1 << 20       # a metrics.json or config is a few KiB; larger is a mistake or an attack
MAX_DEPTH = 32                 # nesting of JSON objects/arrays (the contract needs about 5)
FREE_TEXT_CONTROLS = "\n\t"   # the only control characters a free-text value may hold
# Fields that name things or point at data a submission brings: no '..' segments, no absolute paths.
PATH_CHECKED = ("identity", "provenance.source")


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


class SubmissionError(ValueError):
    """A file that is refused before its content is looked at (size, encoding, JSON structure)."""


def shown(text: Any, limit: int = 60) -> str:
    """Quote submitted text for a message: control/non-printing characters come out escaped."""
    return repr(str(text)[:limit])


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise SubmissionError(f"duplicate key {shown(key)}: a JSON object may name each key once "
                                  "(readers disagree on which value wins)")
        document[key] = value
    return document


def json_depth(text: str) -> int:
    """Deepest nesting of [ and { outside strings, without recursion (a deep file cannot crash it)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def read_capped(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """UTF-8 text of a regular file of at most `limit` bytes (checked before reading)."""
    size = path.lstat().st_size
    if size > limit:
        raise SubmissionError(f"{size} bytes is over the {limit}-byte limit for this file; "
                              "a metrics.json or config holds a few kilobytes")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise SubmissionError(f"not UTF-8 text (byte {error.start}); save the file as UTF-8") from None


def load_strict(path: Path) -> Any:
    """Parse a submitted JSON file, refusing what json.loads would let through or crash on.

    json.loads accepts NaN and Infinity (kept visible as NonFinite so the field can be named),
    keeps the last of duplicate keys, and recurses once per nesting level.
    """
    text = read_capped(path)
    depth = json_depth(text)
    if depth > MAX_DEPTH:
        raise SubmissionError(f"nested {depth} levels deep (limit {MAX_DEPTH}); the result contract "
                              "needs about 5")
    return json.loads(text, parse_constant=NonFinite, object_pairs_hook=_unique_keys)


def _printable(text: str, allowed: str = "") -> bool:
    return all(char in allowed or (char.isprintable() and unicodedata.category(char) != "Cf")
               for char in text)


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
            if not _printable(value, FREE_TEXT_CONTROLS):
                problems.append(f"{where}: {shown(value)} contains control or non-printing "
                                "characters; use plain printable text")
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
                problems.append(f"{where or '<root>'}: key {shown(key)} contains markup")
            if not _printable(str(key)):
                problems.append(f"{where or '<root>'}: key {shown(key)} contains control or "
                                "non-printing characters")
    return problems


def _metric_name_problems(document: dict[str, Any]) -> list[str]:
    """`metric:<name>:ci_low` etc. are the table's own columns: a ':' in a name could overwrite one."""
    problems = []
    for block in ("metrics", "metric_details"):
        names = document.get(block)
        for name in (names if isinstance(names, dict) else ()):
            if ":" in str(name):
                problems.append(f"{block}.{shown(name)}: ':' is reserved for the leaderboard's "
                                "columns (metric:<name>:ci_low, ...); use '_' in metric names")
    return problems


NOT_EVALUATED = "not-evaluated"  # the evaluator name of a diverged run (workflows/commands.py)


def expected_evaluator(benchmark: str) -> str:
    """The one evaluator name a row of `benchmark` may carry: this suite's harness for its family."""
    from leaderboard.headline import family

    return f"ubench-{family(benchmark)}"


def _evaluator_problems(document: dict[str, Any]) -> list[str]:
    """A row's evaluator must be this suite's harness for its benchmark family: `ubench-<family>`
    (`not-evaluated` only on a run that did not finish). Another harness's numbers, or a TOFU
    evaluator on a MUSE row, are not comparable with the rows they would be ranked against."""
    identity, evaluator = document.get("identity"), document.get("evaluator")
    if not isinstance(identity, dict) or not isinstance(evaluator, dict):
        return []
    problems = []
    for field_name in ("name", "variant"):
        value = evaluator.get(field_name)
        if isinstance(value, str):
            try:
                contract.check_safe_name(f"evaluator {field_name}", value)
            except ValueError:
                problems.append(f"evaluator.{field_name}: {shown(value)} is not a safe name: use 1-64 "
                                "letters, digits, '.', '_' or '-'")
    benchmark, name = identity.get("benchmark"), evaluator.get("name")
    if not isinstance(benchmark, str) or not isinstance(name, str) or problems:
        return problems
    expected = expected_evaluator(benchmark)
    finished = (document.get("status") or {}).get("state") == "ok"
    if name != expected and (finished or name != NOT_EVALUATED):
        problems.append(f"evaluator.name: {shown(name)} is not {expected!r}, the evaluator of "
                        f"{benchmark!r} rows; evaluate the model with `ubench evaluate` (rows scored by "
                        "another harness are not comparable)")
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
            config = load_strict(config_file) if config_file.suffix == ".json" else \
                bounded_yaml.load(read_capped(config_file))
        except (OSError, ValueError, yaml.YAMLError) as error:
            return [f"provenance.config_hash: cannot read the submitted config {config_file.name}: "
                    f"{_parse_error(error)}"]
        actual = config_hash(config)
        if actual != declared:
            return [f"provenance.config_hash: {declared} does not match the submitted "
                    f"{config_file.name} ({actual}); submit the exact config the run used"]
    return []


@lru_cache(maxsize=None)
def metric_bounds(benchmark: str) -> dict[str, tuple[float, float]]:
    """Metric name -> (lo, hi) as the row's benchmark declares it (`MetricInfo.bounds` in its
    `Benchmark.metrics`); a benchmark this checkout does not define gets the ones of
    `evaluation/metrics/registry.py` (its evaluator name is refused anyway)."""
    from leaderboard import headline

    bench = headline.definition(benchmark)
    if bench is not None:
        infos = bench.metrics
    else:
        try:
            from evaluation.metrics.registry import METRICS
        except ImportError:
            return {}
        infos = METRICS.values()
    return {info.name: tuple(info.bounds) for info in infos}


def _interval_text(low: float, high: float) -> str:
    left = "(-inf" if low == -math.inf else f"[{low:g}"
    right = "inf)" if high == math.inf else f"{high:g}]"
    return f"{left}, {right}"


def _range_problems(document: dict[str, Any]) -> list[str]:
    benchmark = (document.get("identity") or {}).get("benchmark")
    bounds = metric_bounds(benchmark) if isinstance(benchmark, str) else {}
    blocks = [("metrics", document.get("metrics"))]
    trajectory = document.get("trajectory")
    if isinstance(trajectory, dict) and isinstance(trajectory.get("points"), list):
        blocks += [(f"trajectory.points[{i}].metrics", p.get("metrics"))
                   for i, p in enumerate(trajectory["points"]) if isinstance(p, dict)]
    problems = []
    for where, metrics in blocks:
        for name, value in (metrics.items() if isinstance(metrics, dict) else ()):
            if name not in bounds or isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                continue
            low, high = bounds[name]
            if not low <= value <= high:
                problems.append(f"{where}.{name}: {value} is outside {_interval_text(low, high)}, the values "
                                f"{name} can take on {benchmark} by its definition; store it as the "
                                "evaluator writes it (unscaled)")
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


def _parse_error(error: BaseException) -> str:
    """Where a parse failed, without quoting the file's content back (it may not be the submitter's)."""
    if isinstance(error, (SubmissionError, bounded_yaml.YamlLimitError)):
        return str(error)
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        return f"YAML syntax error at line {mark.line + 1}, column {mark.column + 1}"
    if isinstance(error, json.JSONDecodeError):
        return f"JSON syntax error at line {error.lineno}, column {error.colno}: {error.msg}"
    return type(error).__name__


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def identity_key(document: dict[str, Any]) -> tuple:
    """What makes two files the same result: their names, seed, evaluator variant, hyperparameters
    and submitter (a submission's rows are never the same result as anyone else's)."""
    identity = document.get("identity", {})
    return tuple(identity.get(name) for name in ("benchmark", "split", "model", "role", "method",
                                                 "rectifier", "parametrization", "seed")) + (
        (document.get("evaluator") or {}).get("variant"), _canonical(identity.get("hyperparameters")),
        identity.get("submitter"), _canonical(identity.get("attack")))


def duplicate_result_problems(documents: dict[Path, dict[str, Any]], root: Path | None = None) -> list[str]:
    """Two seeds of one row with the same per-item results (or metrics) within a tolerance are one
    run submitted twice under different seed labels: the interval over them would be a lie. A
    submitted row with another row's results is a copy under another label (`near_duplicates`)."""
    def row_key(document: dict[str, Any]) -> tuple:
        key = identity_key(document)
        return key[:7] + key[8:]  # everything but the seed

    def where(path: Path) -> Path:
        return path.relative_to(root) if root else path

    return near_duplicates.problems(documents, row_key, where)


def find_config(metrics_path: Path, root: Path) -> Path | None:
    """The submitted config next to the metrics file, or in a parent folder up to `root`.

    A symbolic link is returned as found (never followed): the caller refuses it."""
    folder = metrics_path.parent
    while True:
        for name in CONFIG_NAMES:
            if (folder / name).is_symlink() or (folder / name).is_file():
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
    problems += _metric_name_problems(document)
    problems += _evaluator_problems(document)
    problems += _provenance_problems(document, config_file)
    schema = [p for p in _schema_problems(document)
              if not any(p.split(":", 1)[0] == q.split(":", 1)[0] for q in problems)]
    trajectory = contract.trajectory_problems(document) if not schema else []
    return problems + schema + trajectory + _range_problems(document)


def symlinks(path: Path) -> list[Path]:
    """Every symbolic link at or below `path`, found without following any of them."""
    if path.is_symlink():
        return [path]
    found = []
    for folder, dirs, files in os.walk(path, followlinks=False):
        found += [Path(folder) / name for name in dirs + files if (Path(folder) / name).is_symlink()]
    return sorted(found)


def metrics_files(path: Path) -> list[Path]:
    if path.is_file() and not path.is_symlink():
        return [path]
    if not path.is_dir() or path.is_symlink():
        raise FileNotFoundError(f"{path}: no such file or folder")
    found = []
    for folder, dirs, files in os.walk(path, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / name for name in files if name == "metrics.json"]
    return sorted(found)


def _name_of_file_problems(shown_path: Path) -> list[str]:
    if all(_printable(part) for part in shown_path.parts):
        return []
    return [f"{shown(shown_path, 200)}: <file>: the path contains control or non-printing "
            "characters; use plain names"]


def validate_path(path: str | Path) -> Report:
    """Validate one metrics.json or every metrics.json below a folder."""
    path = Path(path)
    root = path if path.is_dir() else path.parent
    report = Report()
    links = symlinks(path)
    for link in links:
        where = link.relative_to(root) if link != path else Path(link.name)
        report.errors.append(f"{shown(where, 200)}: <file>: symbolic links are not accepted (not "
                             "followed); copy the file into the submission")
    seen: dict[tuple, Path] = {}
    for file in metrics_files(path):
        where = file.relative_to(root) if file != path else Path(file.name)
        name_problems = _name_of_file_problems(where)
        if name_problems:
            report.errors += name_problems
            continue
        if file in links:
            continue
        try:
            document = load_strict(file)
        except SubmissionError as error:
            report.errors.append(f"{where}: <file>: {error}")
            continue
        except (OSError, ValueError, RecursionError) as error:
            report.errors.append(f"{where}: <file>: not valid JSON ({_parse_error(error)})")
            continue
        config_file = find_config(file, root)
        if config_file is not None and config_file in links:
            continue  # already reported; its target is never read
        submitter = submission.submitter_of(file)
        problems = check_document(document, config_file)
        problems += submission.submitter_problems(document, submitter)
        problems += submission.folder_problems(file, document, submitter)
        if not problems:
            key = identity_key(document)
            if key in seen:
                problems.append(f"identity: duplicate of {seen[key].relative_to(root)} (same "
                                "benchmark, split, model, role, method, rectifier, "
                                "parametrization, seed, evaluator variant, hyperparameters and "
                                "submitter); keep one")
            else:
                seen[key] = file
                report.documents[file] = document
        report.errors.extend(f"{where}: {problem}" for problem in problems)
    report.errors += duplicate_result_problems(report.documents, root)
    return report
