"""The result contract: where each run's files live and what `metrics.json` holds.

Everything downstream (Snakemake targets, the leaderboard, submission validation) reads results
through this module, so the layout is defined exactly once.

Layout (relative to a results root):
    <benchmark>/<split>/<model>/<method>+<rectifier>[+<parametrization>]/seed<k>/
        metrics.json        identity, metrics, evaluator, cost, provenance, status
        per_item.parquet    per-item metric values (one row per item and evaluation set)
        train_log.jsonl     one line per optimizer step
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
    """Raise jsonschema.ValidationError naming the offending field."""
    jsonschema.validate(document, schema())


def write_metrics(path: str | Path, document: dict[str, Any]) -> Path:
    """Validate, then write atomically: an invalid document never reaches disk."""
    document = {"schema_version": SCHEMA_VERSION, **document}
    validate_metrics(json.loads(atomic.dumps(document)))
    return atomic.write_json(path, document)


def read_metrics(path: str | Path) -> dict[str, Any]:
    document = json.loads(Path(path).read_text())
    validate_metrics(document)
    return document
