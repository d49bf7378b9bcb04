"""The run spec: one unlearning run of a grid, as the Snakefile hands it to `ubench unlearn` and
`ubench evaluate-run` (`--spec` JSON; `ubench grid --json` lists them).

Read once into a typed `RunSpec`; a missing key is an error naming it, not a KeyError deep inside a
job. The JSON itself is kept (`raw`) because results record it verbatim (the train result's `spec`,
the model card's `unlearned`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

DEFAULT_PARAMETRIZATION = "full"
DEFAULT_DTYPE = "float32"


@dataclass(frozen=True)
class RunSpec:
    benchmark: str
    split: str
    objective: str
    rectifier: str
    seed: int
    hyperparameters: dict[str, Any]
    model: Optional[str] = None                 # the grid's model name (evaluate-run's identity)
    parametrization: str = DEFAULT_PARAMETRIZATION
    prompt_format: Optional[str] = None         # None: the model card's or the inferred format
    dtype: str = DEFAULT_DTYPE                  # the model's configured dtype: the training compute dtype
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    REQUIRED = ("benchmark", "split", "objective", "rectifier", "seed", "hyperparameters")

    @classmethod
    def from_json(cls, document: dict[str, Any] | str) -> RunSpec:
        """From the spec's JSON text or its parsed mapping."""
        spec = json.loads(document) if isinstance(document, str) else document
        if not isinstance(spec, dict):
            raise ValueError(f"a run spec is a JSON object, got {type(spec).__name__}")
        missing = [key for key in cls.REQUIRED if key not in spec]
        if missing:
            raise ValueError(f"run spec lacks {', '.join(repr(k) for k in missing)} (it needs "
                             f"{', '.join(cls.REQUIRED)}; `ubench grid --json` shows complete specs)")
        if not isinstance(spec["hyperparameters"], dict):
            raise ValueError(f"run spec 'hyperparameters' must be a mapping, got {spec['hyperparameters']!r}")
        return cls(benchmark=spec["benchmark"], split=spec["split"], objective=spec["objective"],
                   rectifier=spec["rectifier"], seed=int(spec["seed"]), hyperparameters=spec["hyperparameters"],
                   model=spec.get("model"), parametrization=spec.get("parametrization", DEFAULT_PARAMETRIZATION),
                   prompt_format=spec.get("prompt_format"), dtype=spec.get("dtype", DEFAULT_DTYPE), raw=spec)

    # hyperparameters the pipeline reads besides TrainConfig's fields
    @property
    def evaluate_every(self) -> Optional[int]:
        return self.hyperparameters.get("evaluate_every")

    @property
    def corpus(self) -> Optional[str]:
        return self.hyperparameters.get("corpus")

    @property
    def answer_labels(self) -> str:
        return self.hyperparameters.get("answer_labels", "answer")

    @property
    def idk_draw(self) -> str:
        return self.hyperparameters.get("idk_draw", "epoch")

    @property
    def analyzers(self) -> tuple | list:
        return self.hyperparameters.get("analyzers", ())

    @property
    def global_batch_size(self) -> Optional[int]:
        return self.hyperparameters.get("global_batch_size")

    def max_length(self, default: int) -> int:
        """The run's max_length, else `default` (the benchmark's)."""
        return int(self.hyperparameters.get("max_length", default))
