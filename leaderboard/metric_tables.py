"""The metric meta-evaluation's tables on the board: which metrics of a benchmark can be trusted.

The meta-evaluation (`make meta-eval`, config/meta_eval.yaml) writes, per benchmark,
`<results>/meta_eval/<benchmark>/metric_table.json`: every metric's faithfulness (AUC-ROC separating
models that hold the forget knowledge from models that never saw it) and robustness (Q under
quantization, R under relearning, their harmonic mean HM), each with a bootstrap interval over models,
plus the model pools and the replication checks against open-unlearning's Table 2.

A build picks these files up from every results folder it aggregates, checks them against that
contract (any problem stops the build, naming the file and the field) and hands them to the page: a
"Metrics" tab, the faithfulness beside each benchmark's headline forget metric, and a marker on the
column header of every metric whose faithfulness is below LOW_FAITHFULNESS (utility metrics aside:
they are not meant to separate the pools). No file, no tab.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from evaluation.metrics.declaration import DIRECTIONS
from leaderboard import headline

FOLDER = "meta_eval"
FILE = "metric_table.json"
BUILD_FILE = "metric_tables.json"  # a build's copy of every table (benchmark -> table), published under data/
# Below this AUC a metric separates models that know from models that never knew too poorly to rank
# methods by; the board marks it in the column header rather than hiding the column.
LOW_FAITHFULNESS = 0.7
SCORES = ("faithfulness", "Q", "R", "HM")
COUNTS = ("faithfulness", "Q", "R")
POOLS = ("P", "N")
DEFINITIONS = ("faithfulness", "Q", "R", "HM", "lower_is_better")
# Q and R are min(ratio, 1) and HM their harmonic mean; a hair above 1 is float noise, not a breach.
SCORE_TOLERANCE = 1e-9


class MetricTableError(ValueError):
    pass


def table_files(root: Path) -> list[Path]:
    return sorted(Path(root).glob(f"{FOLDER}/*/{FILE}"))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any, least: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _text_problems(value: Any, field: str) -> list[str]:
    if isinstance(value, str) and value.strip():
        return []
    return [f"{field}: expected a non-empty string, got {value!r}"]


def computed(score: dict[str, Any] | None) -> bool:
    """A score that is not null nor {value: null, ...} (both spell "could not be computed")."""
    return score is not None and score.get("value") is not None


def _score_problems(score: Any, field: str, name: str) -> list[str]:
    """A score is null or {value: null, ci_low: null, ci_high: null} (not computable), else {value,
    ci_low, ci_high}; faithfulness is an AUC in [0, 1], Q, R and HM are at most 1 by their definitions."""
    if score is None:
        return []
    if not isinstance(score, dict):
        return [f"{field}: expected an object {{value, ci_low, ci_high}} or null, got {score!r}"]
    problems = [f"{field}.{key}: missing" for key in ("value", "ci_low", "ci_high") if key not in score]
    if problems:
        return problems
    value, low, high = score["value"], score["ci_low"], score["ci_high"]
    if value is None:
        return [] if low is None and high is None else [
            f"{field}: value is null (not computable) but the interval is [{low!r}, {high!r}]; null them too"]
    if not _is_number(value):
        problems.append(f"{field}.value: expected a finite number, got {value!r}")
    if (low is None) != (high is None):
        problems.append(f"{field}: ci_low and ci_high are both numbers or both null, got {low!r} and {high!r}")
    for key, bound in (("ci_low", low), ("ci_high", high)):
        if bound is not None and not _is_number(bound):
            problems.append(f"{field}.{key}: expected a finite number or null, got {bound!r}")
    if problems:
        return problems
    if low is not None and low > high:
        problems.append(f"{field}: ci_low {low} is above ci_high {high}")
    numbers = [v for v in (value, low, high) if v is not None]
    if name == "faithfulness" and not all(0 <= v <= 1 for v in numbers):
        problems.append(f"{field}: an AUC lies in [0, 1], got value {value}, interval [{low}, {high}]")
    if name != "faithfulness" and any(v > 1 + SCORE_TOLERANCE for v in numbers):
        problems.append(f"{field}: {name} is at most 1 by its definition, got value {value}, interval [{low}, {high}]")
    return problems


def _metric_problems(entry: Any, field: str) -> list[str]:
    if not isinstance(entry, dict):
        return [f"{field}: expected an object, got {entry!r}"]
    problems = _text_problems(entry.get("metric"), f"{field}.metric")
    if entry.get("direction") not in DIRECTIONS:
        problems.append(f"{field}.direction: expected one of {', '.join(DIRECTIONS)}, got {entry.get('direction')!r}")
    if not isinstance(entry.get("headline"), bool):
        problems.append(f"{field}.headline: expected true or false, got {entry.get('headline')!r}")
    for name in SCORES:
        if name not in entry:
            problems.append(f"{field}.{name}: missing (null when it could not be computed)")
        else:
            problems += _score_problems(entry[name], f"{field}.{name}", name)
    if "note" in entry and not isinstance(entry["note"], str):
        problems.append(f"{field}.note: expected a string, got {entry['note']!r}")
    counts = entry.get("n")
    if not isinstance(counts, dict):
        problems.append(f"{field}.n: expected an object with the model counts {', '.join(COUNTS)}, got {counts!r}")
    else:
        problems += [f"{field}.n.{name}: expected a count (integer ≥ 0), got {counts.get(name)!r}"
                     for name in COUNTS if not _is_count(counts.get(name))]
    return problems


def _replication_problems(replication: Any) -> list[str]:
    """Optional: only benchmarks with a published reference (tofu-tiny: OU's Table 2) have checks."""
    if replication is None:
        return []
    if not isinstance(replication, dict):
        return [f"replication: expected an object {{reference, checks}} or null, got {replication!r}"]
    problems = _text_problems(replication.get("reference"), "replication.reference")
    checks = replication.get("checks")
    if not isinstance(checks, list):
        return problems + [f"replication.checks: expected a list, got {checks!r}"]
    for i, check in enumerate(checks):
        where = f"replication.checks[{i}]"
        if not isinstance(check, dict):
            problems.append(f"{where}: expected an object {{claim, holds, detail}}, got {check!r}")
            continue
        problems += _text_problems(check.get("claim"), f"{where}.claim")
        if check.get("holds") not in (True, False, None):
            problems.append(f"{where}.holds: expected true, false or null (undecided), got {check.get('holds')!r}")
        if not isinstance(check.get("detail"), str):
            problems.append(f"{where}.detail: expected a string, got {check.get('detail')!r}")
    return problems


def _header_problems(document: dict[str, Any]) -> list[str]:
    problems = _text_problems(document.get("benchmark"), "benchmark") + _text_problems(document.get("split"), "split")
    pools = document.get("pools")
    if not isinstance(pools, dict):
        problems.append(f"pools: expected an object with pools {' and '.join(POOLS)}, got {pools!r}")
    else:
        for name in POOLS:
            pool = pools.get(name)
            if not isinstance(pool, dict):
                problems.append(f"pools.{name}: expected an object {{models, description}}, got {pool!r}")
                continue
            if not _is_count(pool.get("models"), least=1):
                problems.append(f"pools.{name}.models: expected a count ≥ 1, got {pool.get('models')!r}")
            problems += _text_problems(pool.get("description"), f"pools.{name}.description")
    if not _is_count(document.get("robustness_models")):
        problems.append(f"robustness_models: expected a count (integer ≥ 0), got {document.get('robustness_models')!r}")
    bootstrap = document.get("bootstrap")
    if not isinstance(bootstrap, dict):
        problems.append(f"bootstrap: expected an object {{samples, level, seed, over}}, got {bootstrap!r}")
    else:
        if not _is_count(bootstrap.get("samples"), least=1):
            problems.append(f"bootstrap.samples: expected a count ≥ 1, got {bootstrap.get('samples')!r}")
        level = bootstrap.get("level")
        if not (_is_number(level) and 0 < level < 1):
            problems.append(f"bootstrap.level: expected a number in (0, 1), got {level!r}")
        if not _is_count(bootstrap.get("seed")):
            problems.append(f"bootstrap.seed: expected an integer ≥ 0, got {bootstrap.get('seed')!r}")
        problems += _text_problems(bootstrap.get("over"), "bootstrap.over")
    definitions = document.get("definitions")
    if not isinstance(definitions, dict):
        problems.append(f"definitions: expected an object naming {', '.join(DEFINITIONS)}, got {definitions!r}")
    else:
        problems += [p for name in DEFINITIONS for p in _text_problems(definitions.get(name), f"definitions.{name}")]
    return problems


def problems(document: Any) -> list[str]:
    """Every way `document` breaks the metric-table contract (module docstring), one line each."""
    if not isinstance(document, dict):
        return [f"<file>: expected a JSON object, got {type(document).__name__}"]
    found = _header_problems(document)
    metrics = document.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        return found + [f"metrics: expected a non-empty list of metric entries, got {metrics!r}"]
    seen: dict[str, int] = {}
    for i, entry in enumerate(metrics):
        found += _metric_problems(entry, f"metrics[{i}]")
        name = entry.get("metric") if isinstance(entry, dict) else None
        if isinstance(name, str) and name in seen:
            found.append(f"metrics[{i}].metric: {name!r} already appears at metrics[{seen[name]}]; one entry per metric")
        elif isinstance(name, str):
            seen[name] = i
    return found + _replication_problems(document.get("replication"))


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows; write null where a score is not computable")


def read(file: Path) -> dict[str, Any]:
    """One validated table; MetricTableError names the file and every bad field."""
    try:
        document = json.loads(file.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise MetricTableError(f"{file}: not a readable JSON metric table ({error})") from None
    found = problems(document)
    if not found and document["benchmark"] != file.parent.name:
        found.append(f"benchmark: {document['benchmark']!r} does not match its folder {file.parent.name!r} "
                     f"({FOLDER}/<benchmark>/{FILE})")
    if found:
        raise MetricTableError(f"{file}: invalid metric table:\n  " + "\n  ".join(found))
    return document


def load(roots: list[Path]) -> dict[str, dict[str, Any]]:
    """Benchmark -> its table, from every results folder; one table per benchmark across them."""
    tables: dict[str, dict[str, Any]] = {}
    origin: dict[str, Path] = {}
    for root in roots:
        for file in table_files(root):
            document = read(file)
            name = document["benchmark"]
            if name in tables:
                raise MetricTableError(f"{file}: a second metric table for {name!r} (the first is {origin[name]}); "
                                       "keep one per benchmark across the results folders")
            tables[name], origin[name] = document, file
    return dict(sorted(tables.items()))


def is_low(faithfulness: float | None, threshold: float = LOW_FAITHFULNESS, utility: bool = False) -> bool:
    """A metric is flagged when its faithfulness is known and below the threshold. A utility metric
    never is: models that hold the forget knowledge and models that never saw it are meant to score
    alike on it, so a low AUC is its design, not a fault."""
    return not utility and faithfulness is not None and faithfulness < threshold


def utility_axis(benchmark: str) -> set[str]:
    """The benchmark's declared utility metrics (its headline utility axis)."""
    line = headline.headline(benchmark)
    return set() if line is None else set(line.utility)


def column_notes(tables: dict[str, dict[str, Any]], threshold: float = LOW_FAITHFULNESS,
                 utility_of=utility_axis) -> dict[str, dict[str, Any]]:
    """Benchmark -> metric -> what its column header says: faithfulness with its interval (None: not
    computable, `note` says why), whether the meta-evaluation calls it a headline metric, and whether
    it is flagged (`low`; `utility_of(benchmark)` names the metrics that never are)."""
    notes: dict[str, dict[str, Any]] = {}
    for benchmark, table in tables.items():
        utility = utility_of(benchmark)
        for entry in table["metrics"]:
            score = entry["faithfulness"] if computed(entry["faithfulness"]) else {}
            value = score.get("value")
            notes.setdefault(benchmark, {})[entry["metric"]] = {
                "faithfulness": value, "ci_low": score.get("ci_low"), "ci_high": score.get("ci_high"),
                "headline": entry["headline"], "low": is_low(value, threshold, entry["metric"] in utility),
                "split": table["split"],
                "note": entry.get("note")}
    return notes


def digest(tables: dict[str, dict[str, Any]]) -> str | None:
    """Hash of the tables for the build's version record; None without tables, so a build without
    them keeps exactly the content hash it had before tables existed."""
    if not tables:
        return None
    text = json.dumps(tables, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
