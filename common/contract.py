"""The result contract: where each run's files live and what `metrics.json` holds.

Everything downstream (Snakemake targets, the leaderboard, submission validation) reads results
through this module, so the layout is defined exactly once.

Layout (relative to a results root):
    <benchmark>/<split>/<model>/<method>+<rectifier>[+<parametrization>]/seed<k>/
        metrics.json        identity, metrics, evaluator, cost, provenance, status
        per_item.parquet    per-item metric values (one row per item and evaluation set)
        train_log.jsonl     one line per optimizer step
        trajectory.parquet  runs with evaluate_every: the `trajectory` block's points as a table
                            (step, final, one float column per metric)
    <benchmark>/<split>/<model>/reference/<role>/   role in {target, retain}: the starting model
        metrics.json, per_item.parquet              and the retrained reference, evaluated once
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema

from common import atomic

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("metrics.schema.json")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
REFERENCE_ROLES = ("target", "retain")
DEFAULT_PARAMETRIZATION = "full"
TRAJECTORY_FILE = "trajectory.parquet"


def method_dirname(method: str, rectifier: str, parametrization: str = DEFAULT_PARAMETRIZATION) -> str:
    """`npo+gru`, or `npo+gru+lora` when the parametrization is not full fine-tuning."""
    for label, value in (("method", method), ("rectifier", rectifier), ("parametrization", parametrization)):
        check_safe_name(label, value)
    parts = [method, rectifier] + ([] if parametrization == DEFAULT_PARAMETRIZATION else [parametrization])
    return "+".join(parts)


def run_dir(root: str | Path, benchmark: str, split: str, model: str, method: str, rectifier: str,
            seed: int, parametrization: str = DEFAULT_PARAMETRIZATION) -> Path:
    for label, value in (("benchmark", benchmark), ("split", split), ("model", model)):
        check_safe_name(label, value)
    return (Path(root) / benchmark / split / model
            / method_dirname(method, rectifier, parametrization) / f"seed{int(seed)}")


def reference_dir(root: str | Path, benchmark: str, split: str, model: str, role: str) -> Path:
    if role not in REFERENCE_ROLES:
        raise ValueError(f"reference role must be one of {REFERENCE_ROLES}, got {role!r}")
    for label, value in (("benchmark", benchmark), ("split", split), ("model", model)):
        check_safe_name(label, value)
    return Path(root) / benchmark / split / model / "reference" / role


def check_safe_name(label: str, value: str) -> None:
    """Names become folder names and web-page text: letters, digits, '.', '_', '-' only."""
    if not isinstance(value, str) or not SAFE_NAME.match(value) or ".." in value:
        raise ValueError(
            f"{label} {value!r} is not a safe name: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, and no '..'"
        )


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def validate_metrics(document: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError naming the offending field (ValueError for a trajectory
    block whose points are out of order)."""
    jsonschema.validate(document, schema())
    problems = trajectory_problems(document)
    if problems:
        raise ValueError("invalid trajectory block: " + "; ".join(problems))


def trajectory_problems(document: dict[str, Any]) -> list[str]:
    """What the schema cannot say about a `trajectory` block: steps strictly ascending, the last
    point (and only it) final, its metrics the top-level ones, and no block on a diverged run."""
    block = document.get("trajectory")
    if not isinstance(block, dict) or not isinstance(block.get("points"), list) or not block["points"]:
        return []
    points = [p for p in block["points"] if isinstance(p, dict)]
    problems = []
    steps = [p.get("step") for p in points]
    if any(not isinstance(a, int) or not isinstance(b, int) or a >= b for a, b in zip(steps, steps[1:])):
        problems.append(f"trajectory.points: steps {steps} are not strictly ascending")
    finals = [i for i, p in enumerate(points) if p.get("final")]
    if finals != [len(points) - 1]:
        problems.append("trajectory.points: the last point, and only it, must be the final model (final: true)")
    elif points[-1].get("metrics") != document.get("metrics"):
        problems.append("trajectory.points[-1].metrics: the final point must carry the top-level metrics")
    state = document.get("status", {}).get("state") if isinstance(document.get("status"), dict) else None
    if state == "diverged":
        problems.append("trajectory: a diverged run has no trajectory block")
    return problems


def trajectory_table(block: dict[str, Any]):
    """trajectory.parquet: one row per point (step, final, then one float column per metric, sorted
    by name; NaN where a point lacks the metric or it is null)."""
    import pandas as pd

    names = sorted({name for p in block["points"] for name in p["metrics"]})
    rows = [{"step": p["step"], "final": bool(p.get("final", False)),
             **{name: p["metrics"].get(name) for name in names}} for p in block["points"]]
    table = pd.DataFrame(rows, columns=["step", "final", *names])
    return table.astype({"step": "int64", "final": "bool", **{name: "float64" for name in names}})


def checked_metrics(document: dict[str, Any]) -> dict[str, Any]:
    """The document with its schema_version, validated as it will be written (raises otherwise):
    call it before writing a run's other files, so an invalid document leaves none of them."""
    document = {"schema_version": SCHEMA_VERSION, **document}
    validate_metrics(json.loads(atomic.dumps(document)))
    return document


def write_metrics(path: str | Path, document: dict[str, Any]) -> Path:
    """Validate, then write atomically: an invalid document never reaches disk."""
    return atomic.write_json(path, checked_metrics(document))


def read_metrics(path: str | Path) -> dict[str, Any]:
    document = json.loads(Path(path).read_text())
    validate_metrics(document)
    return document
