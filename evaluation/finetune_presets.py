"""Fine-tuning presets of `ubench finetune` (the target and the retain/retrain reference), and the
recipe one launch runs: a preset, its overrides and the process count.

A preset that states `global_batch_size` (the published recipes: TOFU-legacy and GRUN fine-tune at
32 examples per step) gets grad_accum derived for the process count it runs under, so a 4-GPU
fine-tune trains at the same global batch as a 1-GPU one. Plain Python (no torch): the grid checks
at planning time that every fine-tuning job's recipe divides under its launcher.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from common.global_batch import grad_accum_for
from evaluation import benchmarks


@dataclass(frozen=True)
class FinetunePreset:
    lr: float
    epochs: int
    batch_size: int                    # per device
    # examples per optimizer step over all ranks; grad_accum is derived from it per launch (recipe_for).
    # A preset states this or a fixed grad_accum, not both.
    global_batch_size: Optional[int] = None
    grad_accum: Optional[int] = None
    weight_decay: float = 0.0
    max_length: int = 512
    # Splits trained alongside the target/retain split: tiny models have no pretraining, so the
    # general-knowledge sets stand in for it (both target and retain see them).
    extra_splits: tuple[str, ...] = ()
    scheduler: str = "linear"
    # which QA tokens carry the loss: "answer", or "answer_tag+answer" as TOFU-legacy trains (Phi's tag)
    answer_labels: str = "answer"
    # LlamaConfig overrides of the tiny Llama this preset starts from (e.g. a longer context)
    tiny_model: dict = field(default_factory=dict)

    @property
    def warmup_ratio(self) -> float:
        return 1.0 / self.epochs  # TOFU: warmup = one epoch


FINETUNE_PRESETS = {
    # TOFU-legacy README command (benchmarks.md §1): 5 epochs, lr 1e-5 (Llama-2) / 2e-5 (Phi-1.5),
    # wd 0.01, global batch 32 (GRUN's cmd_finetune.sh: 4 x GA 4 x 2 GPUs = 32), max_length 500.
    # TOFU-legacy counts only q_start + question + q_end as the question, so Phi's "Answer: " is trained on.
    "tofu": FinetunePreset(lr=1e-5, epochs=5, batch_size=4, global_batch_size=32, weight_decay=0.01,
                           max_length=500, answer_labels="answer_tag+answer"),
    "tofu-phi": FinetunePreset(lr=2e-5, epochs=5, batch_size=4, global_batch_size=32, weight_decay=0.01,
                               max_length=500, answer_labels="answer_tag+answer"),
    # tofu-tiny on tiny-llama: measured in evaluation/README.md (fits ~2 min on one CPU thread).
    "tofu-tiny": FinetunePreset(lr=3e-3, epochs=50, batch_size=32, grad_accum=1, weight_decay=0.0,
                                max_length=64, extra_splits=("real_authors", "world_facts")),
    # wmdp-tiny on tiny-llama: documents of both domains + practice renderings of the questions
    # (evaluation/benchmarks/wmdp/tiny.py), one example per text; measured in evaluation/README.md.
    "wmdp-tiny": FinetunePreset(lr=3e-3, epochs=40, batch_size=32, grad_accum=1, weight_decay=0.0,
                                max_length=96),
    # muse-tiny on tiny-llama: memorises the fictional articles (target: forget + retain, retrained
    # reference: retain only) within the demo budget; see evaluation/README.md.
    "muse-tiny": FinetunePreset(lr=3e-3, epochs=60, batch_size=8, grad_accum=1, weight_decay=0.0,
                                max_length=128),
    # rwku-tiny on tiny-llama: raw text (passages, neighbour texts, level-1/2 probes in the tiny
    # chat format); positions up to 512 so BBH / fluency prompts plus 256 new tokens fit.
    "rwku-tiny": FinetunePreset(lr=3e-3, epochs=60, batch_size=16, grad_accum=1, weight_decay=0.0,
                                max_length=64, tiny_model={"max_position_embeddings": 512}),
}


def get_preset(name: str) -> FinetunePreset:
    try:
        return FINETUNE_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown fine-tuning preset {name!r}; available: {sorted(FINETUNE_PRESETS)}") from None


def default_preset(model: str, benchmark: str = "tofu") -> str:
    if model == "tiny-llama":
        preset = benchmarks.get(benchmark).tiny_finetune_preset
        if preset is None:
            raise ValueError(f"benchmark {benchmark!r} has no fine-tuning preset for tiny-llama; pass --preset")
        return preset
    return "tofu-phi" if "phi" in model.lower() else "tofu"


def recipe_for(preset: str, overrides: dict | None, num_processes: int) -> FinetunePreset:
    """The preset with `overrides` applied and grad_accum fixed for `num_processes` ranks.

    An override of grad_accum on a preset that states a global batch must also set
    global_batch_size (to null, or a value): otherwise which one holds would be a guess."""
    overrides = dict(overrides or {})
    base = get_preset(preset)
    if "grad_accum" in overrides and overrides["grad_accum"] is not None and "global_batch_size" not in overrides \
            and base.global_batch_size is not None:
        raise ValueError(f"fine-tuning preset {preset!r} states global_batch_size {base.global_batch_size}; "
                         "override global_batch_size (grad_accum follows from it and the process count), or set "
                         "global_batch_size=null together with grad_accum")
    recipe = dataclasses.replace(base, **overrides)
    where = f"fine-tuning preset {preset!r}" + (f" with {overrides}" if overrides else "")
    if recipe.global_batch_size is not None:
        if "grad_accum" in overrides and overrides["grad_accum"] is not None:
            raise ValueError(f"{where}: set global_batch_size or grad_accum, not both")
        return dataclasses.replace(recipe, grad_accum=grad_accum_for(recipe.global_batch_size, recipe.batch_size,
                                                                     num_processes, where))
    if recipe.grad_accum is None:
        raise ValueError(f"{where}: states neither global_batch_size nor grad_accum; set one")
    return recipe
