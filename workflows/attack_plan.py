"""The `attacks:` of a config: which attacks run on which runs, checked at config load.

An experiment lists attacks as `{name, variant[, args, scope, keep_model]}` entries; every run of the
experiment gets every entry. `keep_model: true` puts a weight attack in a job of its own whose
attacked model stays on disk (a prompt attack has none and is refused). Names and variants are read from the attack files' source (methods.registry.ATTACKS),
so a typo fails here, naming the allowed ones, before any job starts. `args` are checked by
constructing the attack (its module imports no torch at the top).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from evaluation import benchmarks


@dataclass(frozen=True)
class AttackEntry:
    name: str
    variant: str
    args: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    scope: str = "trajectory"  # evaluation scope: "trajectory" (headline + matched metrics) or "all"
    # keep the attacked model on disk (a job of its own writes it): where it lives is no part of the
    # attack's identity, so the results are the same either way
    keep_model: bool = field(default=False, compare=False)

    @property
    def label(self) -> str:
        """The folder name under a run's `attacks/` (and the `{attack}` wildcard)."""
        return f"{self.name}-{self.variant}"

    def build(self):
        from methods.registry import ATTACKS

        return ATTACKS.get(self.name)(self.variant, **self.args)

    @property
    def own_job(self) -> bool:
        """Whether the attack runs in a job of its own (`ubench attack`, the attacked model saved and
        kept): a weight attack asked to keep its model (`keep_model`), or one not applied in the
        evaluation job (`Attack.applied_in_evaluation`; quantize and relearn are)."""
        attack = self.build()
        return attack.changes_weights and (self.keep_model or not attack.applied_in_evaluation)

    def as_json(self) -> str:
        # keep_model is left out: it decides the DAG's jobs, not what `ubench attack` or
        # `evaluate-attack` compute
        return json.dumps({"name": self.name, "variant": self.variant, "args": self.args, "scope": self.scope},
                          sort_keys=True)


def parse(entries: list[dict[str, Any]], benchmark: str, where: str) -> list[AttackEntry]:
    """Checked entries of one experiment; ValueError naming the entry and the allowed values."""
    from methods.registry import ATTACKS

    capabilities = benchmarks.get(benchmark).capabilities
    parsed: list[AttackEntry] = []
    for index, entry in enumerate(entries):
        at = f"{where}.attacks[{index}]"
        name, variant = entry["name"], entry["variant"]
        if name not in ATTACKS:
            raise ValueError(f"{at}: unknown attack {name!r}; available: {', '.join(ATTACKS.names())}")
        variants = ATTACKS.class_literal(name, "variants")
        if variant not in variants:
            raise ValueError(f"{at}: attack {name!r} has no variant {variant!r}; variants: {', '.join(variants)}")
        missing = [need for need in ATTACKS.class_literal(name, "needs") if need not in capabilities]
        if missing:
            raise ValueError(f"{at}: {name}/{variant} applies to benchmarks with {', '.join(missing)}, "
                             f"not {benchmark}; remove it from this experiment")
        item = AttackEntry(name, variant, dict(entry.get("args", {})), entry.get("scope", "trajectory"),
                           bool(entry.get("keep_model", False)))
        try:
            built = item.build()
        except ValueError as error:
            raise ValueError(f"{at}: {error}") from None
        if item.keep_model and not built.changes_weights:
            raise ValueError(f"{at}: {name}/{variant} changes no weights, so there is no attacked model to keep; "
                             "remove keep_model from this entry")
        if item.label in {p.label for p in parsed}:
            raise ValueError(f"{at}: {item.label} is listed twice; one entry per attack and variant")
        parsed.append(item)
    return parsed


def label_pattern(labels: list[str]) -> str:
    """The `{attack}` wildcard: exactly the labels this grid uses (a never-matching pattern if none)."""
    return "|".join(re.escape(label) for label in sorted(set(labels))) or r"(?!x)x"


def check_architectures(entries: list[AttackEntry], architectures: dict[str, Any], where: str) -> None:
    """Refuse, before any job starts, an attack that cannot handle a model of the experiment:
    `architectures` maps each model name to (model_type, config.json sizes), or None when the
    architecture is not known without a download (then the job itself reports the problem)."""
    for entry in entries:
        attack = entry.build()
        for model_name, known in sorted(architectures.items()):
            reason = attack.unsupported_reason(*known) if known else None
            if reason:
                raise ValueError(f"{where}.attacks: {entry.label} cannot attack model {model_name!r}: {reason}")
