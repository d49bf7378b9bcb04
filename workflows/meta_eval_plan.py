"""The `meta_eval:` block of a config turned into grid jobs and the specs of the meta_eval rule.

A pool member with role target / retain is a model entry (`models:`, its own `finetune:` recipe:
seed, lr, epochs) whose fine-tuned references the grid adds even when no experiment unlearns it, so
the existing `finetune` and `evaluate_reference` rules build and evaluate it. A member with role
unlearned names runs an experiment defines. Robustness needs attack labels that runs of the
benchmark carry with `scope: all` (every metric evaluated after the attack).
"""
from __future__ import annotations

from typing import Any, Callable

BOOTSTRAP = {"samples": 1000, "level": 0.95, "seed": 0}


class MetaEvalError(ValueError):
    """A meta_eval block that names what the grid cannot build."""


def pool_references(config: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(benchmark, split, model) of every target / retain pool member."""
    found = []
    for benchmark, block in config.get("meta_eval", {}).get("benchmarks", {}).items():
        for pool in ("P", "N"):
            for member in block[pool]["members"]:
                if member["role"] in ("target", "retain"):
                    found += [(benchmark, block["split"], model) for model in member["models"]
                              if (benchmark, block["split"], model) not in found]
    return found


def check(config: dict[str, Any], runs: list, references: dict[tuple, Any], attacks: dict[tuple, list],
          check_split: Callable[[str, str], None]) -> dict[str, dict[str, Any]]:
    """Every member buildable, every robustness label present with scope all; benchmark -> rule spec."""
    block = config.get("meta_eval")
    if not block:
        return {}
    boot = {**BOOTSTRAP, **block.get("bootstrap", {})}
    specs = {}
    for benchmark, entry in block["benchmarks"].items():
        where = f"meta_eval.benchmarks.{benchmark}"
        split = entry["split"]
        try:
            check_split(benchmark, split)
        except ValueError as error:
            raise MetaEvalError(f"{where}.split: {error}") from None
        for pool in ("P", "N"):
            for number, member in enumerate(entry[pool]["members"]):
                _check_member(member, f"{where}.{pool}.members[{number}]", benchmark, split, config["models"],
                              runs, references)
        if "robustness" in entry:
            _check_robustness(entry["robustness"], f"{where}.robustness", benchmark, split, runs, attacks)
        specs[benchmark] = {"benchmark": benchmark, "split": split,
                            "pools": {pool: {"description": entry[pool]["description"],
                                             "members": entry[pool]["members"]} for pool in ("P", "N")},
                            "robustness": entry.get("robustness", {}), "bootstrap": boot,
                            **({"replication": entry["replication"]} if "replication" in entry else {})}
    return specs


def _check_member(member, where, benchmark, split, models, runs, references) -> None:
    for model in member["models"]:
        if model not in models:
            raise MetaEvalError(f"{where}: model {model!r} is not defined under `models:` "
                                f"(defined: {', '.join(sorted(models))})")
    role = member["role"]
    if role in ("target", "retain"):
        if "method" in member or "seeds" in member:
            raise MetaEvalError(f"{where}: method / seeds select unlearned runs; a {role} member takes models only")
        for model in member["models"]:
            reference = references[(benchmark, split, model)]
            if role == "retain" and reference.retain is None:
                raise MetaEvalError(f"{where}: {benchmark}/{split}/{model} has no retain model (retain: none); "
                                    "use unlearned runs for this pool (role: unlearned)")
        return
    if "method" not in member:
        raise MetaEvalError(f"{where}: role unlearned needs `method: objective+rectifier`")
    for model in member["models"]:
        seeds = sorted(run.seed for run in runs if (run.benchmark, run.split, run.model, run.method)
                       == (benchmark, split, model, member["method"]))
        wanted = member.get("seeds", seeds)
        missing = sorted(set(wanted) - set(seeds)) if seeds else wanted
        if not seeds or missing:
            raise MetaEvalError(f"{where}: no run {benchmark}/{split}/{model}/{member['method']} "
                                f"seed(s) {missing or wanted} in this grid's experiments; add an experiment that "
                                "unlearns it")


def _check_robustness(labels, where, benchmark, split, runs, attacks) -> None:
    for kind, label in labels.items():
        scopes = {entry.scope for run in runs if (run.benchmark, run.split) == (benchmark, split)
                  for entry in attacks.get(run.key, []) if entry.label == label}
        if not scopes:
            raise MetaEvalError(f"{where}.{kind}: no run of {benchmark}/{split} has the attack {label!r}; list it "
                                "under an experiment's attacks: (with scope: all)")
        if scopes != {"all"}:
            raise MetaEvalError(f"{where}.{kind}: the attack {label!r} must be listed with scope: all (every metric "
                                "is evaluated after the attack); it has scope trajectory")
