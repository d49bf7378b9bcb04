"""The attack interface: a named attack with variants, applied to an unlearned model before it is
evaluated again with the benchmark's own evaluator.

Two kinds:
- weight attacks (`changes_weights = True`: quantize, relearn) map the loaded model to the attacked
  one in place (`apply`) and return a record of what they did (library, bits, steps ...); with
  `applied_in_evaluation` (quantize, relearn) the DAG applies them inside the evaluation job, to the
  model it loaded in the run's dtype (writing and reading an attacked copy cost more than quantizing
  and as much as relearning); `ubench attack` still writes an attacked copy for any weight attack,
  and the DAG runs it when a config entry asks to keep the model (`keep_model: true`);
- prompt attacks (`changes_weights = False`: prompt) leave the weights alone and change the prompt
  format the evaluator wraps every question in (`prompt_format`).

`variants` and `needs` are literals in the class body: the config check reads them from source
(methods.registry.Registry.class_literal) without importing torch. An attack may restrict the
forget items its evaluation reports (`evaluation_questions`): relearn/forget-split trains on one half
of the forget questions and is judged on the other half only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from methods.registry import parse_args


# modules a parametrization attaches to the model beside its base weights (GRUN's gated edits,
# `model.grun`, methods/parametrizations/grun.py). A weight attack attacks the unlearned model as it
# is used, edits and gates on; workflows/attack_commands.py saves it with them.
EDIT_MODULES = ("grun",)


def edit_modules(model) -> list[str]:
    """The parametrization edit modules `model` carries."""
    return [name for name in EDIT_MODULES if getattr(model, name, None) is not None]


@dataclass
class AttackContext:
    """What an attack may use besides the model: the run's benchmark data and settings."""

    benchmark: Any            # evaluation.benchmarks Benchmark
    data: Any                 # what `benchmark.open` returned
    split: str
    tokenizer: Any
    prompt_format: Any
    seed: int = 0
    max_length: int = 64
    compute_dtype: str = "float32"
    scratch: Any = None       # a folder the attack may write logs to (relearn's training loop)
    progress: bool = False
    extra: dict = field(default_factory=dict)
    # (tokenizer, prompt_format, corpus, max_length) -> training examples: the evaluation's encoder
    # (evaluation.encoding.encode_corpus), passed in so methods/ does not import evaluation/
    encode_corpus: Any = None


class Attack:
    name: str = "?"
    variants: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()         # benchmark capabilities it requires (Benchmark.capabilities); () = none
    changes_weights: bool = True
    # a weight attack the DAG applies to the loaded model inside the evaluation process (`ubench
    # evaluate-attack`): no `attack` job, no attacked weights written (unless the entry has keep_model)
    applied_in_evaluation: bool = False
    defaults: dict[str, Any] = {}       # arguments a config may set under `args:` (per attack entry)

    def __init__(self, variant: str | None = None, **args):
        variant = self.variants[0] if variant is None else variant
        if variant not in self.variants:
            raise ValueError(f"attack {self.name!r} has no variant {variant!r}; variants: {', '.join(self.variants)}")
        self.variant = variant
        self.args = parse_args(f"attack {self.name}/{variant}", args, self.variant_defaults(variant))

    def variant_defaults(self, variant: str) -> dict[str, Any]:
        return dict(self.defaults)

    @property
    def label(self) -> str:
        """`<name>-<variant>`: the attack's folder under a run's `attacks/`."""
        return f"{self.name}-{self.variant}"

    def parameters(self) -> dict[str, Any]:
        """What the result identity records about this attack (its variant and every argument)."""
        return {"name": self.name, "variant": self.variant, "args": dict(sorted(self.args.items()))}

    def apply(self, model, context: AttackContext) -> dict[str, Any]:
        """Weight attacks: change `model` in place; return the record written beside the attacked model."""
        raise NotImplementedError(f"attack {self.name!r} changes no weights")

    def unsupported_reason(self, model_type: str, fields: dict[str, Any]) -> str | None:
        """Why this attack cannot run on a model of this architecture (config.json `model_type` and
        sizes), or None; checked at config load, before any job starts. Must not import torch."""
        return None

    def prompt_format(self, prompt_format, context: AttackContext | None = None):
        """Prompt attacks: the format the evaluator uses instead of the model's own; `context` gives
        the run's benchmark data (in-context relearning shows forget pairs from it)."""
        return prompt_format

    def evaluation_questions(self, context: AttackContext) -> set[str] | None:
        """Forget questions the attacked model is judged on; None = all of them."""
        return None
