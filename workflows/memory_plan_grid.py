"""`ubench plan-memory`: the predicted per-GPU memory of every training job a config expands to.

methods/memory_plan.py plans one job from an architecture; this module reads the grid (its
fine-tuning jobs and unlearning runs, each under its model's launcher), resolves the pipeline's own
model names (the `tiny-llama` preset) to architectures, and prints one line per distinct job.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

from methods.memory_plan import MEMORY_KEYS, Job, Launch, Plan, fits, format_row, plan_job

TINY_VOCAB = 1024  # the word vocabulary of tofu-tiny: ~1k


def job_model(name: str):
    """What methods.memory_plan.Job takes as `model`: the tiny preset as its transformers config (its
    sizes live with the evaluation's model presets), any other name as it is."""
    if name != "tiny-llama":
        return name
    from transformers import LlamaConfig

    from evaluation.models import TINY_LLAMA_CONFIG

    return LlamaConfig(vocab_size=TINY_VOCAB, **TINY_LLAMA_CONFIG)


def jobs_of_grid(grid) -> list[tuple[str, Job, Launch]]:
    """(label, job, launch) per fine-tuning job (target / retain references) and unlearning run of a
    grid; both train with the same loop under the model's launcher."""
    from workflows.grid import REPO_ROOT

    out = []
    for benchmark, model, train_split in grid.finetune_jobs():
        entry = grid.model(model)
        launch = Launch.from_launcher(grid.launcher_entry(model, "finetune"), REPO_ROOT)
        job = Job(job_model(entry.get("base", model)), "finetune", "none", "full",
                  finetune_hyperparameters(entry, benchmark, model), entry.get("dtype", "float32"))
        out.append((f"{benchmark}/{model}/finetune-{train_split}", job, launch))
    for run in grid.runs:
        entry = grid.model(run.model)
        launch = Launch.from_launcher(grid.launcher_entry(run.model), REPO_ROOT)
        job = Job(job_model(entry.get("base", run.model)), run.objective, run.rectifier, run.parametrization,
                  dict(run.hyperparameters), entry.get("dtype", "float32"))
        out.append((f"{run.benchmark}/{run.split}/{run.model}/{run.method}", job, launch))
    return out


def finetune_hyperparameters(entry: dict[str, Any], benchmark: str, model: str) -> dict[str, Any]:
    """The memory-relevant settings of a model's fine-tuning recipe: its preset (as `ubench finetune`
    picks it) with the recipe's own overrides on top."""
    from evaluation.finetune import default_preset, get_preset

    recipe = dict(entry.get("finetune", {}))
    preset = get_preset(recipe.get("preset") or default_preset(entry.get("base", model), benchmark))
    return {"batch_size": recipe.get("batch_size", preset.batch_size),
            "max_length": recipe.get("max_length", preset.max_length)}


def report(grid, *, out=print) -> bool:
    """Print one line per distinct job of the grid; True when every job fits its GPUs."""
    seen: dict[str, int] = {}
    ok = True
    lines = []
    plans: dict[str, Plan] = {}  # building a meta model per job is slow; most jobs differ only in lr
    for label, job, launch in jobs_of_grid(grid):
        key = json.dumps([job.model, job.objective, job.rectifier, job.parametrization, job.dtype,
                          {k: job.hyperparameters.get(k) for k in MEMORY_KEYS}, dataclasses.asdict(launch)],
                         sort_keys=True, default=str)
        plan = plans[key] = plans.get(key) or plan_job(job, launch)
        line = format_row(label, plan, launch)
        ok &= fits(plan, launch)
        if launch.gpus and launch.gpus < launch.num_processes:
            ok = False
            line += f"  (launcher asks {launch.num_processes} processes on {launch.gpus} GPUs)"
        seen[line] = seen.get(line, 0) + 1
        if seen[line] == 1:
            lines.append(line)
    for line in lines:
        out(line)
    out(f"{sum(seen.values())} jobs: {'all fit' if ok else 'some DO NOT FIT'} their declared GPUs")
    return ok
