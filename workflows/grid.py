"""The experiment grid: a validated config turned into the list of jobs the Snakefile plans.

A config (config/default.yaml, config/paper/*.yaml) holds `models` and a list of `experiments`;
each experiment is a cartesian block splits × models × objectives × rectifiers × parametrizations
× seeds whose hyperparameters are the block's base values deep-merged with every matching
`overrides` entry, in order. This module is plain Python so `ubench grid` and the tests can use
it without Snakemake.
"""
from __future__ import annotations

import copy
import itertools
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import yaml

from common import contract
from common.global_batch import grad_accum_for
from evaluation import benchmarks
from workflows import attack_plan, meta_eval_plan

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG = REPO_ROOT / "config" / "default.yaml"
TRAIN_BATCH_SIZE_DEFAULT = 4  # = methods.train.TrainConfig.batch_size (no torch here)



class GridError(ValueError):
    """A config that validates against the schema but cannot describe a grid."""


class UnusedOverride(UserWarning):
    """An override whose `when:` selects no run (almost always a misspelt name)."""


@dataclass(frozen=True)
class ModelSource:
    """Where a reference model comes from: a `finetune` job on `train_split`, or a fixed path/Hub id."""

    kind: str  # "finetune" | "external"
    location: str  # train split for finetune, path or Hub id for external

    @property
    def is_finetuned(self) -> bool:
        return self.kind == "finetune"


@dataclass(frozen=True)
class Reference:
    benchmark: str
    split: str
    model: str
    target: ModelSource
    retain: ModelSource | None


@dataclass(frozen=True)
class Run:
    benchmark: str
    split: str
    model: str
    objective: str
    rectifier: str
    parametrization: str
    seed: int
    hyperparameters: dict[str, Any] = field(hash=False, compare=False)

    @property
    def method(self) -> str:
        return contract.method_dirname(self.objective, self.rectifier, self.parametrization)

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        return (self.benchmark, self.split, self.model, self.method, self.seed)

    def path(self, root: str | Path) -> Path:
        return contract.run_dir(root, self.benchmark, self.split, self.model, self.objective,
                                self.rectifier, self.seed, self.parametrization)


@dataclass
class Grid:
    config: dict[str, Any]
    runs: list[Run]
    references: list[Reference]
    attacks: dict[tuple, list] = field(default_factory=dict)  # run key -> workflows.attack_plan.AttackEntry list
    meta_eval: dict[str, dict] = field(default_factory=dict)  # benchmark -> spec of `ubench meta-eval table`

    def run(self, benchmark: str, split: str, model: str, method: str, seed: int | str) -> Run:
        wanted = (benchmark, split, model, method, int(seed))
        for run in self.runs:
            if run.key == wanted:
                return run
        raise KeyError(f"no run {'/'.join(map(str, wanted))} in this grid (see `ubench grid`)")

    def reference(self, benchmark: str, split: str, model: str) -> Reference:
        for ref in self.references:
            if (ref.benchmark, ref.split, ref.model) == (benchmark, split, model):
                return ref
        raise KeyError(f"no reference models for {benchmark}/{split}/{model} in this grid")

    def model(self, name: str) -> dict[str, Any]:
        return self.config["models"][name]

    def launcher_entry(self, model: str, job: str = "unlearn") -> dict[str, Any]:
        """The model's `launcher` block as configured; fine-tuning jobs (job "finetune") take its
        `finetune_launcher` when it has one."""
        entry = self.model(model)
        if job == "finetune" and entry.get("finetune_launcher"):
            return entry["finetune_launcher"]
        return entry.get("launcher", {})

    def finetune_recipe(self, benchmark: str, model: str, train_split: str) -> dict[str, Any]:
        """The model's `finetune:` block for one fine-tuning job; the job that trains a target (its
        train split is a target's) also takes the block's `target:` settings (e.g. GRUN's Mistral
        target fine-tuned 8 epochs where the retain references keep the preset)."""
        recipe = dict(self.model(model).get("finetune", {}))
        target_settings = recipe.pop("target", {})
        trains_target = any(ref.benchmark == benchmark and ref.model == model and ref.target.is_finetuned
                            and ref.target.location == train_split for ref in self.references)
        return {**recipe, **target_settings} if trains_target else recipe

    def finetune_jobs(self) -> list[tuple[str, str, str]]:
        """Unique (benchmark, model, train_split) triples that need `ubench finetune`."""
        jobs = []
        for ref in self.references:
            for source in (ref.target, ref.retain):
                if source is not None and source.is_finetuned:
                    job = (ref.benchmark, ref.model, source.location)
                    if job not in jobs:
                        jobs.append(job)
        return jobs


# ---------------------------------------------------------------------------------------------
# loading and validation

def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except UnicodeDecodeError as error:
        raise GridError(f"{path}: not UTF-8 text (byte {error.start}); save the config as UTF-8") from error
    except yaml.YAMLError as error:
        raise GridError(yaml_error_message(path, error)) from error
    if not isinstance(data, dict):
        raise GridError(f"{path}: expected a YAML mapping at the top level")
    return data


def yaml_error_message(path: str | Path, error: yaml.YAMLError) -> str:
    """`file:line:column: what is wrong` for a YAML syntax error (PyYAML counts from 0)."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = " ".join(str(part) for part in (getattr(error, "context", None), getattr(error, "problem", None))
                       if part) or str(error)
    return f"{where}: YAML syntax error: {problem}"


def schema() -> dict[str, Any]:
    return load_yaml(SCHEMA_PATH)


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Snakemake's own rule for `--configfile` stacking: mappings merge, everything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(*paths: str | Path, with_default: bool = True) -> dict[str, Any]:
    """The config Snakemake would see for `--configfile paths...` (default.yaml underneath)."""
    config: dict[str, Any] = load_yaml(DEFAULT_CONFIG) if with_default else {}
    for path in paths:
        config = deep_merge(config, load_yaml(path))
    return config


def validate(config: dict[str, Any]) -> None:
    """Schema check with an error that names the offending key path and what was wrong."""
    check_finite(config)
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for error in errors[:10]:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            lines.append(f"  at {where}: {_explain(error)}")
        raise GridError("invalid config:\n" + "\n".join(lines)
                        + f"\n(schema: {SCHEMA_PATH.relative_to(REPO_ROOT)})")


def check_finite(config: Any, where: str = "") -> None:
    """NaN and inf pass JSON-schema bounds (every comparison with NaN is false): refuse them by name."""
    if isinstance(config, float) and not math.isfinite(config):
        raise GridError(f"invalid config:\n  at {where or '(top level)'}: {config} is not a finite number")
    if isinstance(config, dict):
        for key, value in config.items():
            check_finite(value, f"{where}/{key}" if where else str(key))
    elif isinstance(config, list):
        for index, value in enumerate(config):
            check_finite(value, f"{where}/{index}")


def _explain(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"{error.message}; allowed keys: {', '.join(allowed)}" if allowed else error.message
    return error.message


# ---------------------------------------------------------------------------------------------
# expansion

def _as_list(selector: Any) -> list[str]:
    values = selector if isinstance(selector, list) else [selector]
    return [str(v) for v in values]


def _matches(when: dict[str, Any], identity: dict[str, Any]) -> bool:
    return all(str(identity[key]) in _as_list(selector) for key, selector in when.items())


def hyperparameters_for(experiment: dict[str, Any], identity: dict[str, Any]) -> dict[str, Any]:
    hyper = copy.deepcopy(experiment.get("hyperparameters", {}))
    for override in experiment.get("overrides", []):
        if _matches(override.get("when", {}), identity):
            hyper = deep_merge(hyper, override["set"])
    return hyper


def num_processes(model: dict[str, Any], job: str = "unlearn") -> int:
    """Ranks a model's jobs are launched with (`launcher.num_processes`; fine-tuning jobs take
    `finetune_launcher` when the model has one)."""
    launcher = model.get("finetune_launcher") if job == "finetune" and model.get("finetune_launcher") else None
    return int((launcher or model.get("launcher") or {}).get("num_processes", 1))


def with_global_batch(hyper: dict[str, Any], processes: int, where: str) -> dict[str, Any]:
    """`global_batch_size` turned into the grad_accum of this launcher's process count (a step
    consumes batch_size x grad_accum x num_processes examples); the global batch stays recorded."""
    if "global_batch_size" not in hyper:
        return hyper
    if "grad_accum" in hyper:
        raise GridError(f"{where}: hyperparameters set both global_batch_size and grad_accum; keep "
                        "global_batch_size (grad_accum follows from it and the launcher's num_processes)")
    batch_size = hyper.get("batch_size", TRAIN_BATCH_SIZE_DEFAULT)
    try:
        accumulation = grad_accum_for(hyper["global_batch_size"], batch_size, processes, where)
    except ValueError as error:
        raise GridError(str(error)) from None
    return {**hyper, "grad_accum": accumulation}


def retain_split(benchmark: str, split: str) -> str:
    """The training split of `benchmark`'s retain reference for unlearning split `split` (TOFU:
    forget01 ↔ retain99, forget05 ↔ retain95, forget10 ↔ retain90)."""
    try:
        found = benchmarks.get(benchmark).finetune_split("retain", split)
    except ValueError as error:
        raise GridError(str(error)) from None
    if found is None:
        raise GridError(f"{benchmark} has no retain fine-tuning split for {split!r}")
    return found


def _fill(template: str, benchmark: str, split: str) -> str:
    fields = {"benchmark": benchmark, "split": split}
    if "{retain_split}" in template:
        fields["retain_split"] = retain_split(benchmark, split)
    return template.format(**fields)


def _source(choice: str, *, role: str, benchmark: str, split: str, model: dict[str, Any]) -> ModelSource | None:
    bench = benchmarks.get(benchmark)
    train_split = bench.finetune_split(role, split)
    if choice == "auto":
        if bench.fine_tunes_by_default and train_split is not None:
            choice = "finetune"
        else:
            choice = "base" if role == "target" else "none"
    if choice == "none":
        if role == "target":
            raise GridError("a target model cannot be `none`: use `base`, `finetune` or a path / Hub id")
        return None
    if choice == "finetune":
        if train_split is None:
            raise GridError(f"`finetune` for the {role} model needs a benchmark that fine-tunes one; {benchmark} "
                            f"has no fine-tuning split for it: give a Hub id / folder, `base` or `none`")
        return ModelSource("finetune", train_split)
    if choice == "base":
        return ModelSource("external", model["base"])
    return ModelSource("external", _fill(choice, benchmark, split))


def check_registered(runs: Iterable[Run]) -> None:
    """Fail early, naming the unknown objective/rectifier/parametrization and the known ones.

    Skipped when the engine is not importable (e.g. planning a grid on a login node without torch).
    """
    try:
        from methods import registry
    except ImportError:
        return
    tables = {
        "objective": getattr(registry, "OBJECTIVES", None),
        "rectifier": getattr(registry, "RECTIFIERS", None),
        "parametrization": getattr(registry, "PARAMETRIZATIONS", None),
    }
    problems = []
    for label, table in tables.items():
        if table is None:
            continue
        known = set(_registry_names(table))  # read from the method files' source: torch stays unimported
        if not known:
            continue
        used = sorted({getattr(run, label) for run in runs})
        for name in used:
            if name not in known:
                problems.append(f"unknown {label} {name!r}; registered: {', '.join(sorted(known))}")
    if problems:
        raise GridError("\n".join(problems))


def _registry_names(table: Any) -> list[str]:
    for attribute in ("names", "available"):
        value = getattr(table, attribute, None)
        if callable(value):
            return list(value())
        if value is not None:
            return list(value)
    try:
        return list(table)
    except TypeError:
        return []


def build(config: dict[str, Any], *, check_names: bool = True) -> Grid:
    """Validate `config` and expand it into runs and reference models."""
    validate(config)
    runs: dict[tuple, Run] = {}
    origin: dict[tuple, str] = {}
    references: dict[tuple, Reference] = {}
    attacks: dict[tuple, list] = {}
    models = config["models"]
    experiments = [(f"experiments[{i}]", e) for i, e in enumerate(config["experiments"])]
    experiments += [(f"extra_experiments[{i}]", e) for i, e in enumerate(config.get("extra_experiments", []))]
    for index, experiment in experiments:
        benchmark = experiment["benchmark"]
        try:
            bench = benchmarks.get(benchmark)
            for split in experiment["splits"]:
                bench.check_split(split)
        except ValueError as error:
            raise GridError(f"{index}: {error}") from None
        try:
            attack_entries = attack_plan.parse(experiment.get("attacks", []), benchmark, index)
        except ValueError as error:
            raise GridError(str(error)) from None
        for model_name in experiment["models"]:
            if model_name not in models:
                raise GridError(f"{index} uses model {model_name!r}, which is not defined "
                                f"under `models:` (defined: {', '.join(sorted(models))})")
        if attack_entries:
            from workflows.snapshot_disk import architecture_fields  # config.json sizes, no torch

            architectures = {name: architecture_fields(str(models[name].get("base", name)))
                             for name in experiment["models"]}
            try:
                attack_plan.check_architectures(attack_entries, architectures, index)
            except ValueError as error:
                raise GridError(str(error)) from None
        product = itertools.product(
            experiment["splits"], experiment["models"], experiment["objectives"],
            experiment["rectifiers"], experiment.get("parametrizations", ["full"]),
            experiment.get("seeds", [0]),
        )
        for split, model_name, objective, rectifier, parametrization, seed in product:
            identity = dict(benchmark=benchmark, split=split, model=model_name, objective=objective,
                            rectifier=rectifier, parametrization=parametrization, seed=seed)
            hyper = with_global_batch(hyperparameters_for(experiment, identity),
                                      num_processes(models[model_name]),
                                      f"{index} run {benchmark}/{split}/{model_name}/{objective}+{rectifier}")
            run = Run(**identity, hyperparameters=hyper)
            if run.key in runs:
                raise GridError(f"run {'/'.join(map(str, run.key))} appears in {origin[run.key]} "
                                f"and {index}: each run must be defined once")
            runs[run.key], origin[run.key] = run, index
            if attack_entries:
                attacks[run.key] = attack_entries
            ref_key = (benchmark, split, model_name)
            if ref_key not in references:
                model = models[model_name]
                references[ref_key] = Reference(
                    benchmark, split, model_name,
                    target=_source(model.get("target", "auto"), role="target", benchmark=benchmark,
                                   split=split, model=model),
                    retain=_source(model.get("retain", "auto"), role="retain", benchmark=benchmark,
                                   split=split, model=model),
                )
    for benchmark, split, model_name in meta_eval_plan.pool_references(config):
        if model_name not in models:
            raise GridError(f"meta_eval.benchmarks.{benchmark}: model {model_name!r} is not defined under "
                            f"`models:` (defined: {', '.join(sorted(models))})")
        try:
            benchmarks.get(benchmark).check_split(split)
        except ValueError as error:
            raise GridError(f"meta_eval.benchmarks.{benchmark}.split: {error}") from None
        if (benchmark, split, model_name) not in references:  # a pool model nobody unlearns: references only
            model = models[model_name]
            references[(benchmark, split, model_name)] = Reference(
                benchmark, split, model_name,
                target=_source(model.get("target", "auto"), role="target", benchmark=benchmark, split=split,
                               model=model),
                retain=_source(model.get("retain", "auto"), role="retain", benchmark=benchmark, split=split,
                               model=model),
            )
    try:
        specs = meta_eval_plan.check(config, list(runs.values()), references, attacks,
                                     lambda name, split: benchmarks.get(name).check_split(split))
    except ValueError as error:
        raise GridError(str(error)) from None
    grid = Grid(config=config, runs=list(runs.values()), references=list(references.values()), attacks=attacks,
                meta_eval=specs)
    check_finetune_recipes(grid)
    report_idle_overrides(idle_overrides(experiments), strict=config.get("strict_overrides", True))
    check_evaluation_variants(config, {run.benchmark for run in grid.runs})
    check_prompt_formats(models)
    check_model_locations(grid)
    check_trajectories(grid.runs)
    check_snapshot_disk(grid)
    if check_names:
        check_registered(grid.runs)
        check_method_arguments(grid.runs)
    return grid


# ---------------------------------------------------------------------------------------------
# config-time checks of what a job would otherwise discover after data generation and fine-tuning

SELECTOR_LISTS = {"split": "splits", "model": "models", "objective": "objectives", "rectifier": "rectifiers",
                  "parametrization": "parametrizations", "seed": "seeds"}


@dataclass(frozen=True)
class IdleOverride:
    """One `when:` key of an override that selects no run of its experiment."""
    experiment: str  # experiments[0]
    message: str
    override: str    # the override as canonical JSON (one list shared by a YAML anchor repeats it)


def idle_overrides(experiments: list[tuple[str, dict[str, Any]]]) -> list[IdleOverride]:
    """`when:` keys that select no run, for overrides idle in every experiment that holds them: an
    override list shared by several experiments (a YAML anchor) may hold overrides for the others."""
    defaults = {"parametrizations": ["full"], "seeds": [0]}
    held: dict[str, set[str]] = {}
    idle: list[IdleOverride] = []
    for index, experiment in experiments:
        choices = {key: [str(v) for v in experiment.get(plural, defaults.get(plural, []))]
                   for key, plural in SELECTOR_LISTS.items()}
        for number, override in enumerate(experiment.get("overrides", [])):
            canonical = json.dumps(override, sort_keys=True, default=str)
            held.setdefault(canonical, set()).add(index)
            for key, selector in override.get("when", {}).items():
                if not set(_as_list(selector)) & set(choices[key]):
                    idle.append(IdleOverride(index, f"{index}.overrides[{number}].when.{key}: {selector!r} matches "
                                                    f"no run of this experiment (its {SELECTOR_LISTS[key]}: "
                                                    f"{', '.join(choices[key])})", canonical))
    idle_in: dict[str, set[str]] = {}
    for item in idle:
        idle_in.setdefault(item.override, set()).add(item.experiment)
    return [item for item in idle if idle_in[item.override] == held[item.override]]


def report_idle_overrides(idle: list[IdleOverride], *, strict: bool) -> None:
    """An override that selects no run is almost always a typo: an error, or with
    `strict_overrides: false` (narrowing a grid's lists from the command line) an UnusedOverride warning."""
    if not idle:
        return
    fix = "fix the name, remove the override, or set `strict_overrides: false` to allow overrides that select nothing"
    if strict:
        raise GridError("\n".join(item.message for item in idle) + f"\n({fix})")
    for item in idle:
        warnings.warn(f"{item.message}; a typo? fix the name or remove the override", UnusedOverride, stacklevel=3)


def check_finetune_recipes(grid: Grid) -> None:
    """Every fine-tuning job's recipe names a known preset and its global batch divides under the
    model's fine-tuning launcher (what `ubench finetune` would find after the data are built)."""
    from evaluation.finetune_presets import default_preset, recipe_for

    for benchmark, model, train_split in grid.finetune_jobs():
        recipe = grid.finetune_recipe(benchmark, model, train_split)
        recipe.pop("seed", None)
        try:
            preset = recipe.pop("preset", None) or default_preset(grid.model(model)["base"], benchmark)
            recipe_for(preset, recipe, num_processes(grid.model(model), "finetune"))
        except ValueError as error:
            raise GridError(f"models.{model}.finetune ({benchmark} {train_split}): {error}") from None


def check_prompt_formats(models: dict[str, Any]) -> None:
    from evaluation.prompts import FORMATS

    for name, model in models.items():
        chosen = model.get("prompt_format")
        if chosen is not None and chosen not in FORMATS:
            raise GridError(f"models.{name}.prompt_format: unknown prompt format {chosen!r}; "
                            f"accepted: {', '.join(sorted(FORMATS))}")


def check_model_locations(grid: Grid) -> None:
    """A base/target/retain that names a local folder must exist; a bare name must be a preset or
    look like a Hub id (evaluation.models.check_reference: `tiny-lama` is a typo, not a Hub id)."""
    from evaluation import models

    seen = set()
    for ref in grid.references:
        model = grid.model(ref.model)
        for role, source in (("base", ModelSource("external", model["base"])), ("target", ref.target),
                             ("retain", ref.retain)):
            if source is None or source.is_finetuned or (ref.model, role, source.location) in seen:
                continue
            seen.add((ref.model, role, source.location))
            location = source.location
            if not Path(location).is_absolute() and (REPO_ROOT / location).exists():
                continue  # relative to the workflow folder, where the jobs run
            try:
                models.check_reference(location, hub=False)
            except (FileNotFoundError, ValueError) as error:
                raise GridError(f"models.{ref.model}.{role}: {error}") from None


def check_trajectories(runs: Iterable[Run]) -> None:
    """`evaluate_every` below `max_steps` (a K at or past the last step would give no intermediate
    point), not on a run saved as a bare adapter (nothing to copy snapshots into); `keep_checkpoints` only
    with it. With `epochs` instead of max_steps the step count is known only at training time: a K
    past it gives a trajectory of the final point alone."""
    for run in runs:
        hyper, label = run.hyperparameters, f"{run.benchmark}/{run.split}/{run.model}/{run.method}/seed{run.seed}"
        every = hyper.get("evaluate_every")
        if every is None:
            if hyper.get("keep_checkpoints"):
                raise GridError(f"run {label}: hyperparameters.keep_checkpoints needs evaluate_every "
                                "(there are no snapshots to keep); set evaluate_every: K or drop it")
            continue
        steps = hyper.get("max_steps")
        if steps is not None and every >= steps:
            raise GridError(f"run {label}: hyperparameters.evaluate_every {every} is not below max_steps {steps}, "
                            f"so it gives no intermediate point; use evaluate_every < {steps} or drop it")
        if hyper.get("parametrization_args", {}).get("save") == "adapter":  # as methods.snapshots.check_supported
            raise GridError(f"run {label}: hyperparameters.evaluate_every needs LoRA's merged save "
                            "(parametrization_args.save: merged, the default): an adapter folder is not evaluable")


def check_snapshot_disk(grid: Grid) -> None:
    """Trajectory snapshots must fit the work folder's disk and the snapshot_disk_gb cap
    (workflows/snapshot_disk.py: trainable bytes x snapshots alive at once)."""
    from workflows import snapshot_disk

    try:
        snapshot_disk.check(grid)
    except snapshot_disk.SnapshotDiskError as error:
        raise GridError(str(error)) from None


def check_method_arguments(runs: Iterable[Run]) -> None:
    """Build every objective, rectifier, parametrization and analyzer with the arguments its runs
    give it, so an unknown argument (`betta`) or analyzer (`geffekt`) fails now, naming the run."""
    try:
        from methods.registry import ANALYZERS, OBJECTIVES, PARAMETRIZATIONS, RECTIFIERS
    except ImportError:
        return
    tried: set[str] = set()
    for run in runs:
        hyper = run.hyperparameters
        parts = [("objective_args", OBJECTIVES, run.objective, hyper.get("objective_args", {})),
                 ("rectifier_args", RECTIFIERS, run.rectifier, hyper.get("rectifier_args", {})),
                 ("parametrization_args", PARAMETRIZATIONS, run.parametrization,
                  hyper.get("parametrization_args", {}))]
        for position, spec in enumerate(hyper.get("analyzers", [])):
            name = spec if isinstance(spec, str) else spec.get("name")
            args = {} if isinstance(spec, str) else {k: v for k, v in spec.items() if k != "name"}
            parts.append((f"analyzers[{position}]", ANALYZERS, name, args))
        for key, registry, name, args in parts:
            attempt = f"{key}|{name}|{json.dumps(args, sort_keys=True, default=str)}"
            # a known method with its own defaults always constructs (tests/methods check it); building
            # one imports its module, and so torch: only arguments a config gives are tried, and methods
            # with required arguments (`required_args`, e.g. PDU's retain_loss_eps)
            required = getattr(registry, "required_arguments", lambda _: ())(name) if name in registry else ()
            if (not args and name in registry and not required) or attempt in tried:
                continue
            tried.add(attempt)
            label = f"{run.benchmark}/{run.split}/{run.model}/{run.method}/seed{run.seed}"
            try:
                registry.get(name)(**args)
            except (KeyError, ValueError, TypeError) as error:
                message = error.args[0] if isinstance(error, KeyError) and error.args else error
                raise GridError(f"run {label}: hyperparameters.{key}: {message}") from None


def check_evaluation_variants(config: dict[str, Any], used: set[str]) -> None:
    """`evaluation.variants` names registered benchmarks and their variants; `evaluation.variant`
    belongs to at least one benchmark of the grid."""
    options = config.get("evaluation", {})
    for name, variant in options.get("variants", {}).items():
        try:
            benchmarks.get(name).check_variant(variant)
        except ValueError as error:
            raise GridError(f"evaluation.variants.{name}: {error}") from None
    variant = options.get("variant")
    if variant is not None and used and not any(variant in benchmarks.get(b).variants for b in used):
        offered = {b: list(benchmarks.get(b).variants) for b in sorted(used)}
        raise GridError(f"evaluation.variant {variant!r} is not a variant of any benchmark in this grid; "
                        f"variants: {offered}")


def summary(grid: Grid) -> dict[str, int]:
    """Job counts per rule, as Snakemake should plan them from scratch."""
    used = {run.benchmark for run in grid.runs}
    n_refs = sum(1 + (ref.retain is not None) for ref in grid.references)
    # runs with evaluate_every go through the snapshot variants of the rules (workflows/rules/*.smk)
    trajectory = [run for run in grid.runs if run.hyperparameters.get("evaluate_every") is not None]
    kept = sum(bool(run.hyperparameters.get("keep_checkpoints")) for run in trajectory)
    # (reference roles, attack) per label on a (benchmark, split, model): the references get their runs' attacks
    labels: dict[tuple, dict[str, Any]] = {}
    for run in grid.runs:
        for entry in grid.attacks.get(run.key, []):
            labels.setdefault((run.benchmark, run.split, run.model), {}).setdefault(entry.label, entry)
    reference_attacks = [(1 + (ref.retain is not None), entry) for ref in grid.references
                         for entry in labels.get((ref.benchmark, ref.split, ref.model), {}).values()]
    return {
        "generate_data": sum(benchmarks.get(name).generated for name in used),
        "finetune": len(grid.finetune_jobs()),
        "evaluate_reference": n_refs,
        "unlearn": len(grid.runs) - len(trajectory),
        "unlearn_snapshots": len(trajectory) - kept,
        "unlearn_kept_snapshots": kept,
        "evaluate_run": len(grid.runs) - len(trajectory),
        "evaluate_run_trajectory": len(trajectory),
        "attack": sum(entry.own_job for entries in grid.attacks.values() for entry in entries),
        "evaluate_attack": sum(len(entries) for entries in grid.attacks.values()),
        "attack_reference": sum(entry.own_job * roles for roles, entry in reference_attacks),
        "evaluate_attack_reference": sum(roles for roles, _ in reference_attacks),
        "leaderboard": int(bool(grid.config.get("leaderboard", {}).get("build", True))),
        "meta_eval": len(grid.meta_eval),
    }
