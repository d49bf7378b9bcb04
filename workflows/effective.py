"""What a paper config really runs, checked against the papers' effective settings.

`config/paper/official/effective.yaml` holds, per paper config, the settings the official scripts
ran (global batch, steps or epochs, lr and schedule, warm-up, weight decay, clipping, precision
regime, evaluator variant, every method weight), read at the commits methods.md cites. This module
expands a config the way its launcher runs it (a step consumes batch_size x grad_accum x
num_processes examples), computes each run's effective settings (defaults of TrainConfig and of
every objective / rectifier filled in) and lists every difference that the config does not name as a
deviation in `report.deviations` (which the reproduction report prints next to the affected rows).
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import yaml

from workflows import grid as grid_module

TABLE_PATH = grid_module.REPO_ROOT / "config" / "paper" / "official" / "effective.yaml"
RUN_SELECTORS = ("split", "model", "objective", "rectifier", "parametrization", "seed")


def load_table(path: str | Path = TABLE_PATH) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _train_defaults() -> dict[str, Any]:
    from methods.train import TrainConfig

    return {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}


def _args(registry, name: str, given: dict[str, Any]) -> dict[str, Any]:
    """The arguments a method runs with: its defaults with the config's values on top."""
    built = registry.get(name)(**given)
    return dict(getattr(built, "args", given))


def evaluator_variant(config: dict[str, Any], benchmark: str) -> str:
    from evaluation import benchmarks

    options = config.get("evaluation", {})
    bench = benchmarks.get(benchmark)
    if benchmark in options.get("variants", {}):
        return options["variants"][benchmark]
    if options.get("variant") in bench.variants:
        return options["variant"]
    return bench.default_variant


def run_settings(grid: grid_module.Grid, run: grid_module.Run) -> dict[str, Any]:
    """Flat effective settings of one run under its model's declared launcher."""
    from evaluation import benchmarks
    from methods.registry import OBJECTIVES, RECTIFIERS

    defaults = _train_defaults()
    hyper = run.hyperparameters
    launcher = grid.launcher_entry(run.model)
    processes = grid_module.num_processes(grid.model(run.model))

    def value(key):
        return hyper.get(key, defaults.get(key))

    settings = {
        "global_batch": value("batch_size") * value("grad_accum") * processes,
        "num_processes": processes,
        "accelerate_config": Path(launcher["accelerate_config"]).stem if launcher.get("accelerate_config") else None,
        "max_steps": hyper.get("max_steps"),
        "epochs": None if hyper.get("max_steps") is not None else value("epochs"),
        "lr": value("lr"),
        "scheduler": value("scheduler"),
        "warmup_steps": value("warmup_steps"),
        "warmup_ratio": value("warmup_ratio"),
        "weight_decay": value("weight_decay"),
        "max_grad_norm": value("max_grad_norm"),
        "max_length": hyper.get("max_length", benchmarks.get(run.benchmark).default_max_length),
        "master_dtype": hyper.get("master_dtype", "float32"),
        "evaluator": evaluator_variant(grid.config, run.benchmark),
        "corpus": hyper.get("corpus", {}),
    }
    for key, item in _args(OBJECTIVES, run.objective, hyper.get("objective_args", {})).items():
        settings[f"objective_args.{key}"] = item
    for key, item in _args(RECTIFIERS, run.rectifier, hyper.get("rectifier_args", {})).items():
        settings[f"rectifier_args.{key}"] = item
    for key, item in hyper.get("parametrization_args", {}).items():
        settings[f"parametrization_args.{key}"] = item
    return settings


def matches(when: dict[str, Any], identity: dict[str, Any]) -> bool:
    return all(str(identity.get(key)) in {str(v) for v in (sel if isinstance(sel, list) else [sel])}
               for key, sel in (when or {}).items())


def identity(run: grid_module.Run) -> dict[str, Any]:
    return {key: getattr(run, key) for key in RUN_SELECTORS}


def expected_settings(entry: dict[str, Any], ident: dict[str, Any]) -> dict[str, Any]:
    """The table's `settings` with every matching `rules` entry on top, in order."""
    expected = dict(entry.get("settings", {}))
    for rule in entry.get("rules", []):
        if matches(rule.get("when", {}), ident):
            expected.update(rule["settings"])
    return expected


def same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool) or expected is None or actual is None:
        return expected == actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return math.isclose(float(expected), float(actual), rel_tol=1e-9, abs_tol=0.0)
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(same(expected[k], actual[k]) for k in expected)
    if isinstance(expected, list) and isinstance(actual, (list, tuple)):
        return len(expected) == len(actual) and all(same(e, a) for e, a in zip(expected, actual))
    return expected == actual


def deviations(config: dict[str, Any]) -> list[dict[str, Any]]:
    return list((config.get("report") or {}).get("deviations", []))


def deviations_for(config: dict[str, Any], ident: dict[str, Any]) -> list[dict[str, Any]]:
    """Named deviations of the config that concern the run (or reference row) `ident`."""
    return [d for d in deviations(config) if matches(d.get("when", {}), ident)]


def row_deviations(config: dict[str, Any], entry: Any, reference: bool) -> list[str]:
    """Names of the deviations a report row concerns: an unlearned row (a grid Run) those whose
    `when` matches it (no `when`: every unlearning run); a reference row (target / retain model) those
    that select it by split and/or model only (a method selector, or none, concerns the unlearning runs)."""
    if not reference:
        return [d["name"] for d in deviations_for(config, identity(entry))]
    ident = {"split": entry.split, "model": entry.model}
    return [d["name"] for d in deviations(config)
            if d.get("when") and set(d["when"]) <= {"split", "model"} and matches(d["when"], ident)]


def extra_experiments(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Experiment blocks labelled `extra`: runs beyond what the paper's code runs."""
    return [e for e in config["experiments"] + config.get("extra_experiments", []) if e.get("label") == "extra"]


def experiment_label(config: dict[str, Any], run: grid_module.Run) -> str:
    """`paper` or `extra`: the label of the experiment block that defines `run`."""
    for experiment in config["experiments"] + config.get("extra_experiments", []):
        if (experiment["benchmark"] == run.benchmark and run.split in experiment["splits"]
                and run.model in experiment["models"] and run.objective in experiment["objectives"]
                and run.rectifier in experiment["rectifiers"]
                and run.parametrization in experiment.get("parametrizations", ["full"])
                and run.seed in experiment.get("seeds", [0])):
            return experiment.get("label", "paper")
    raise KeyError(f"no experiment defines {run.key}")


def check_runs(grid: grid_module.Grid, entry: dict[str, Any]) -> tuple[list[str], set[tuple[str, str]]]:
    """Problems (differences no named deviation covers, rows outside the official branches) and the
    (deviation, field) pairs that covered a difference."""
    problems, used = [], set()
    branches = entry.get("branches")
    for run in grid.runs:
        ident, label = identity(run), f"{run.split}/{run.model}/{run.method}"
        actual = run_settings(grid, run)
        covering = deviations_for(grid.config, ident)
        for key, want in expected_settings(entry, ident).items():
            if key not in actual:
                problems.append(f"{label}: table field {key!r} is not a setting of this run")
                continue
            if same(want, actual[key]):
                continue
            names = [d["name"] for d in covering if key in d.get("fields", [])]
            if names:
                used.update((name, key) for name in names)
            else:
                problems.append(f"{label}: {key} is {actual[key]!r}, the paper ran {want!r} "
                                f"(fix the config or name a deviation in report.deviations)")
        if branches is not None:
            pair, extra = f"{run.objective}+{run.rectifier}", experiment_label(grid.config, run) == "extra"
            if extra and pair in branches:
                problems.append(f"{label}: labelled extra but {pair} is the official branch {branches[pair]!r}")
            if not extra and pair not in branches:
                problems.append(f"{label}: {pair} is no official branch ({', '.join(branches)}); "
                                "label its experiment `label: extra`")
    return problems, used


def finetune_settings(grid: grid_module.Grid, benchmark: str, model: str, train_split: str) -> dict[str, Any]:
    from evaluation.finetune_presets import default_preset, recipe_for

    recipe = grid.finetune_recipe(benchmark, model, train_split)
    recipe.pop("seed", None)
    preset = recipe.pop("preset", None) or default_preset(grid.model(model)["base"], benchmark)
    processes = grid_module.num_processes(grid.model(model), "finetune")
    resolved = recipe_for(preset, recipe, processes)
    return {"global_batch": resolved.batch_size * resolved.grad_accum * processes, "epochs": resolved.epochs,
            "lr": resolved.lr, "weight_decay": resolved.weight_decay, "max_length": resolved.max_length,
            "num_processes": processes}


def check_finetunes(grid: grid_module.Grid, entry: dict[str, Any]) -> list[str]:
    """Every fine-tuning job against the table's `finetune` block of its model (`target:` for the
    job that trains the target)."""
    problems = []
    table = entry.get("finetune", {})
    for benchmark, model, train_split in grid.finetune_jobs():
        if model not in table:
            problems.append(f"fine-tune {model} {train_split}: no `finetune` entry for {model} in the table")
            continue
        expected = {k: v for k, v in table[model].items() if k != "target"}
        if any(ref.model == model and ref.target.is_finetuned and ref.target.location == train_split
               for ref in grid.references):
            expected.update(table[model].get("target", {}))
        actual = finetune_settings(grid, benchmark, model, train_split)
        for key, want in expected.items():
            if not same(want, actual.get(key)):
                problems.append(f"fine-tune {model} {train_split}: {key} is {actual.get(key)!r}, "
                                f"the paper ran {want!r}")
    return problems


def check(configfile: str | Path, entry: dict[str, Any]) -> list[str]:
    """Every difference between `configfile`'s runs / fine-tunes and the table `entry`, and every
    field deviation that covers none (stale)."""
    grid = grid_module.build(grid_module.load_config(configfile))
    problems, used = check_runs(grid, entry)
    problems += check_finetunes(grid, entry)
    for deviation in deviations(grid.config):
        for key in deviation.get("fields", []):
            if (deviation["name"], key) not in used:
                problems.append(f"deviation {deviation['name']!r} names field {key!r}, but no run differs "
                                "from the paper there: drop the field or the deviation")
    return problems
