"""Fine-tuning presets of `ubench finetune` (the target and the retain/retrain reference), and the
recipe one launch runs: a preset, its overrides and the process count.

Each benchmark declares its presets (`Benchmark.finetune_presets`, in its own folder). A preset
that states `global_batch_size` (the published recipes fine-tune at 32 examples per step) gets
grad_accum derived for the process count it runs under, so a 4-GPU fine-tune trains at the same
global batch as a 1-GPU one. Plain Python (no torch): the grid checks
at planning time that every fine-tuning job's recipe divides under its launcher.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from common.global_batch import grad_accum_for


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
    # which QA tokens carry the loss: "answer", or "answer_tag+answer" (the prompt's answer tag, Phi's
    # "Answer: ", is trained on too, as one published recipe does)
    answer_labels: str = "answer"
    # LlamaConfig overrides of the tiny Llama this preset starts from (e.g. a longer context)
    tiny_model: dict = field(default_factory=dict)
    # a forget split whose questions the target learns with their paraphrased answers instead of the
    # originals (the meta-evaluation's paraphrase-trained pool P); a config sets it under
    # `finetune: {target: ...}` since the retain model never sees those questions
    paraphrased_forget: Optional[str] = None

    @property
    def warmup_ratio(self) -> float:
        return 1.0 / self.epochs  # warmup = one epoch, as the published QA recipe


def presets() -> dict[str, FinetunePreset]:
    """Every registered benchmark's fine-tuning presets by name (`Benchmark.finetune_presets`)."""
    from evaluation import benchmarks

    found: dict[str, FinetunePreset] = {}
    for bench in benchmarks.BENCHMARKS.values():
        for name, preset in bench.finetune_presets.items():
            if found.setdefault(name, preset) is not preset:
                raise ValueError(f"fine-tuning preset {name!r} is declared twice (benchmark {bench.name!r})")
    return found


def __getattr__(name: str):
    if name == "FINETUNE_PRESETS":  # the old module-level table, now gathered from the benchmarks
        return presets()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_preset(name: str) -> FinetunePreset:
    available = presets()
    try:
        return available[name]
    except KeyError:
        raise ValueError(f"unknown fine-tuning preset {name!r}; available: {sorted(available)}") from None


def default_preset(model: str, benchmark: str) -> str:
    """The benchmark's preset for `model`. A benchmark that states none for a real model trains
    with the first registered benchmark's recipe for it (the published QA fine-tuning recipe)."""
    from evaluation import benchmarks

    bench = benchmarks.get(benchmark)
    preset = bench.default_finetune_preset(model)
    if preset is None and model == "tiny-llama":
        raise ValueError(f"benchmark {benchmark!r} has no fine-tuning preset for tiny-llama; pass --preset")
    if preset is None:
        stated = (other.default_finetune_preset(model) for other in benchmarks.BENCHMARKS.values())
        preset = next((name for name in stated if name is not None), None)
    if preset is None:
        raise ValueError(f"no benchmark states a fine-tuning preset for {model!r}; pass --preset")
    return preset


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
