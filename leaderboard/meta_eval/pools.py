"""The evaluated models of one benchmark's meta-evaluation, read from the result tree.

A pool member selector (config `meta_eval.benchmarks.<b>.P|N.members`) names reference models
(`role: target | retain`, results/<b>/<split>/<model>/reference/<role>/) or unlearned runs
(`role: unlearned` with `method: objective+rectifier[+parametrization]` and optional `seeds`,
results/<b>/<split>/<model>/<method>/seed<k>/). Robustness reads every unlearned run of the
benchmark and split that has the two attack evaluations (`<run>/attacks/<label>/metrics.json`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import contract

REFERENCE_ROLES = ("target", "retain")


class PoolError(ValueError):
    """A pool that cannot be read: a missing evaluation, a bad selector."""


@dataclass(frozen=True)
class Evaluated:
    """One model's metrics.json (its `metrics` block) and where it came from."""
    path: Path
    metrics: dict[str, Any]
    details: dict[str, Any]
    evaluator: dict[str, Any]

    @property
    def per_item(self) -> Path:
        return self.path.parent / "per_item.parquet"


def read(path: Path) -> Evaluated | None:
    """The document, or None for a run that diverged / an attack that was not applicable."""
    document = contract.read_metrics(path)
    if document.get("status", {}).get("state", "ok") != "ok":
        return None
    return Evaluated(path, dict(document.get("metrics") or {}), dict(document.get("metric_details") or {}),
                     dict(document.get("evaluator") or {}))


def member_files(results: Path, benchmark: str, split: str, member: dict[str, Any]) -> list[Path]:
    """metrics.json files one selector names; an error names a file the selector needs but lacks."""
    role = member.get("role")
    base = Path(results) / benchmark / split
    files: list[Path] = []
    for model in member.get("models", []):
        if role in REFERENCE_ROLES:
            files.append(base / model / "reference" / role / "metrics.json")
        elif role == "unlearned":
            method = member.get("method")
            if not method:
                raise PoolError(f"pool member {member}: role unlearned needs `method` (objective+rectifier)")
            seeds = member.get("seeds")
            if seeds is None:
                found = sorted((base / model / method).glob("seed*/metrics.json"))
                if not found:
                    raise PoolError(f"no evaluated run under {base / model / method}; run the meta-eval DAG first")
                files += found
            else:
                files += [base / model / method / f"seed{seed}" / "metrics.json" for seed in seeds]
        else:
            raise PoolError(f"pool member {member}: role must be target, retain or unlearned, got {role!r}")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise PoolError("pool models without an evaluation (run `make meta-eval` / the meta_eval rule):\n  "
                        + "\n  ".join(missing))
    return files


def pool(results: Path, benchmark: str, split: str, members: list[dict[str, Any]]) -> list[Evaluated]:
    """The evaluated models of one pool (P or N); diverged runs are left out."""
    found = [read(path) for member in members for path in member_files(results, benchmark, split, member)]
    return [doc for doc in found if doc is not None]


@dataclass(frozen=True)
class Attacked:
    """An unlearned run with its quantized and relearned evaluations and its retain reference's relearning."""
    run: Evaluated
    quantized: Evaluated | None
    relearned: Evaluated | None
    relearn_before: dict[str, Any]     # the run's values on the items the relearned model is judged on
    retain_before: Evaluated | None
    retain_relearned: Evaluated | None


def _maybe(path: Path) -> Evaluated | None:
    return read(path) if path.is_file() else None


def relearn_basis(relearned: Evaluated | None, run: Evaluated) -> dict[str, Any]:
    """Values before relearning on the relearned model's items: the run's own metrics when the attack
    judges every forget item, else (forget-split: held-out half) the attack's recorded basis."""
    if relearned is None:
        return {}
    attack = relearned.details.get("attack", {})
    if attack.get("forget_items", "all") == "all":
        return run.metrics
    return dict(attack.get("basis", {}).get("before", {}))


def attacked_runs(results: Path, benchmark: str, split: str, quantize: str, relearn: str) -> list[Attacked]:
    """Every unlearned run of (benchmark, split) with an evaluation under `quantize` or `relearn`."""
    base = Path(results) / benchmark / split
    found: list[Attacked] = []
    for run_file in sorted(base.glob("*/*/seed*/metrics.json")):
        if run_file.parent.parent.name == "reference":
            continue
        attacks = run_file.parent / "attacks"
        quantized, relearned = _maybe(attacks / quantize / "metrics.json"), _maybe(attacks / relearn / "metrics.json")
        if quantized is None and relearned is None:
            continue
        run = read(run_file)
        if run is None:
            continue
        retain = base / run_file.parent.parent.parent.name / "reference" / "retain"
        found.append(Attacked(run, quantized, relearned, relearn_basis(relearned, run),
                              _maybe(retain / "metrics.json"), _maybe(retain / "attacks" / relearn / "metrics.json")))
    return found
