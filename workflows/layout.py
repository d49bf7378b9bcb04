"""Where the pipeline puts things, and the per-job values the rules read (one place, no Snakemake).

Results follow the result contract (common/contract.py). Everything bulky (generated data,
fine-tuned and unlearned models) lives under `work_dir`, which is gitignored.
"""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from evaluation import benchmarks
from workflows.grid import REPO_ROOT, Grid, ModelSource, Reference, Run

# Wildcard value patterns: result-contract names, a method folder `obj+rect[+param]`, a seed.
NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
METHOD = rf"{NAME}\+{NAME}(\+{NAME})?"
ROLE = r"target|retain"


class Layout:
    def __init__(self, grid: Grid):
        self.grid = grid
        config = grid.config
        self.results = config.get("results_dir", "results")
        self.work = config.get("work_dir", "work")
        self.logs = config.get("logs_dir", "logs")
        # Relative data and accelerate-config paths are relative to the repository, not the cwd.
        self.data_dir = str(_from_repo(config.get("data_dir", "../shared/data")))
        self.threads = int(config.get("threads", 1))

    # ---- file patterns (Snakemake wildcards in braces) ------------------------------------
    def generated_data_dir(self, benchmark: str = "{benchmark}") -> str:
        return f"{self.work}/data/{benchmark}"

    @property
    def generated_benchmarks(self) -> list[str]:
        """Generated benchmarks (tiny twins) this grid uses: the `generate_data` rule's wildcard values."""
        return sorted({run.benchmark for run in self.grid.runs if benchmarks.get(run.benchmark).generated})

    def finetuned_dir(self, benchmark="{benchmark}", model="{model}", train_split="{train_split}") -> str:
        return f"{self.work}/models/{benchmark}/{model}/finetuned-{train_split}"

    def unlearned_dir(self, b="{benchmark}", s="{split}", m="{model}", method="{method}", seed="{seed}") -> str:
        return f"{self.work}/runs/{b}/{s}/{m}/{method}/seed{seed}/model"

    def snapshots_dir(self, b="{benchmark}", s="{split}", m="{model}", method="{method}", seed="{seed}") -> str:
        """Trajectory snapshots of a run with evaluate_every (temporary unless keep_checkpoints)."""
        return f"{self.work}/runs/{b}/{s}/{m}/{method}/seed{seed}/snapshots"

    def trajectory_runs(self, kept: bool) -> list[Run]:
        """Runs with evaluate_every whose snapshots are kept (`kept`) or deleted once evaluated."""
        return [run for run in self.grid.runs if run.hyperparameters.get("evaluate_every") is not None
                and bool(run.hyperparameters.get("keep_checkpoints", False)) == kept]

    def trajectory_constraint(self, kept: bool | None) -> str:
        """A `benchmark` wildcard pattern that matches only these runs' paths (kept None: both
        kinds): a lookahead over the rest of the path (benchmark/split/model/method/seedK/), so the
        snapshot variants of `unlearn` and `evaluate_run` claim exactly the runs with evaluate_every
        (by ruleorder) and every other run keeps the plain rules."""
        runs = self.trajectory_runs(False) + self.trajectory_runs(True) if kept is None else self.trajectory_runs(kept)
        paths = "|".join(re.escape(f"{r.benchmark}/{r.split}/{r.model}/{r.method}/seed{r.seed}/") for r in runs)
        return rf"(?=(?:{paths})){NAME}"

    def trajectory_constraint_all(self) -> str:
        return self.trajectory_constraint(None)

    def train_result(self, b="{benchmark}", s="{split}", m="{model}", method="{method}", seed="{seed}") -> str:
        return f"{self.work}/runs/{b}/{s}/{m}/{method}/seed{seed}/train_result.json"

    def run_file(self, name: str, b="{benchmark}", s="{split}", m="{model}", method="{method}",
                 seed="{seed}") -> str:
        return f"{self.results}/{b}/{s}/{m}/{method}/seed{seed}/{name}"

    def reference_file(self, name: str, b="{benchmark}", s="{split}", m="{model}", role="{role}") -> str:
        return f"{self.results}/{b}/{s}/{m}/reference/{role}/{name}"

    # ---- attacks (workflows/rules/attack.smk) ---------------------------------------------
    def attack_work(self, name: str, b="{benchmark}", s="{split}", m="{model}", method="{method}", seed="{seed}",
                    attack="{attack}") -> str:
        """The attacked model (`model`, kept: only an attack job writes it) and the attack's record
        (`attack.json`)."""
        return f"{self.work}/runs/{b}/{s}/{m}/{method}/seed{seed}/attacks/{attack}/{name}"

    def attack_file(self, name: str, b="{benchmark}", s="{split}", m="{model}", method="{method}", seed="{seed}",
                    attack="{attack}") -> str:
        return f"{self.results}/{b}/{s}/{m}/{method}/seed{seed}/attacks/{attack}/{name}"

    def attack_entry(self, wildcards):
        """The workflows.attack_plan.AttackEntry of `{attack}` on the wildcards' run."""
        run = self.grid.run(wildcards.benchmark, wildcards.split, wildcards.model, wildcards.method, wildcards.seed)
        for entry in self.grid.attacks.get(run.key, []):
            if entry.label == wildcards.attack:
                return entry
        raise KeyError(f"run {'/'.join(map(str, run.key))} has no attack {wildcards.attack!r} in this grid")

    def attack_labels(self, changes_weights: bool | None = None, own_job: bool | None = None) -> list[str]:
        """Labels of the grid's attacks (only weight / only prompt attacks, only those with or
        without an `attack` job of their own (AttackEntry.own_job), when asked)."""
        labels = set()
        for entries in self.grid.attacks.values():
            for entry in entries:
                if ((changes_weights is None or entry.build().changes_weights == changes_weights)
                        and (own_job is None or entry.own_job == own_job)):
                    labels.add(entry.label)
        return sorted(labels)

    def attack_inputs(self, wildcards) -> dict[str, Any]:
        """evaluate_attack's model input: the attacked model and its record, or (a prompt attack, an
        attack applied in the evaluation job) the unlearned model itself."""
        keys = dict(b=wildcards.benchmark, s=wildcards.split, m=wildcards.model, method=wildcards.method,
                    seed=wildcards.seed)
        if self.attack_entry(wildcards).own_job:
            return {"model": self.attack_work("model", **keys, attack=wildcards.attack),
                    "record": self.attack_work("attack.json", **keys, attack=wildcards.attack)}
        return {"model": self.unlearned_dir(**keys)}

    def attack_pattern(self, changes_weights: bool | None = None, own_job: bool | None = None) -> str:
        from workflows.attack_plan import label_pattern

        return label_pattern(self.attack_labels(changes_weights, own_job))

    # reference models get the attacks of their runs: the target's and the retain model's knowledge
    # after the same attack (the retain model relearned: what relearning from scratch recovers)
    def reference_attack_work(self, name: str, b="{benchmark}", s="{split}", m="{model}", role="{role}",
                              attack="{attack}") -> str:
        return f"{self.work}/models/{b}/{s}/{m}/reference-{role}/attacks/{attack}/{name}"

    def reference_attack_file(self, name: str, b="{benchmark}", s="{split}", m="{model}", role="{role}",
                              attack="{attack}") -> str:
        return f"{self.results}/{b}/{s}/{m}/reference/{role}/attacks/{attack}/{name}"

    def reference_attacks(self, benchmark: str, split: str, model: str) -> list:
        """The attacks of the runs on this (benchmark, split, model), first entry of each label."""
        found: dict[str, Any] = {}
        for run in self.grid.runs:
            if (run.benchmark, run.split, run.model) == (benchmark, split, model):
                for entry in self.grid.attacks.get(run.key, []):
                    found.setdefault(entry.label, entry)
        return list(found.values())

    def reference_attack_entry(self, wildcards):
        for entry in self.reference_attacks(wildcards.benchmark, wildcards.split, wildcards.model):
            if entry.label == wildcards.attack:
                return entry
        raise KeyError(f"{wildcards.benchmark}/{wildcards.split}/{wildcards.model} has no attack {wildcards.attack!r}")

    def reference_spec(self, wildcards) -> dict[str, Any]:
        """The spec `ubench attack` / `evaluate-attack` take for a reference model (role target/retain)."""
        model = self.grid.model(wildcards.model)
        return {"benchmark": wildcards.benchmark, "split": wildcards.split, "model": wildcards.model,
                "role": wildcards.role, "seed": 0, "hyperparameters": {},
                "prompt_format": model.get("prompt_format"), "dtype": model.get("dtype", "float32")}

    def reference_attack_inputs(self, wildcards) -> dict[str, Any]:
        if self.reference_attack_entry(wildcards).own_job:
            keys = dict(b=wildcards.benchmark, s=wildcards.split, m=wildcards.model, role=wildcards.role,
                        attack=wildcards.attack)
            return {"model": self.reference_attack_work("model", **keys),
                    "record": self.reference_attack_work("attack.json", **keys)}
        return {"source": self.reference_model(wildcards.benchmark, wildcards.split, wildcards.model,
                                               wildcards.role)[1]}

    def reference_attack_model(self, wildcards) -> str:
        """The model evaluate_attack_reference evaluates: the attacked copy, or the reference itself."""
        if self.reference_attack_entry(wildcards).own_job:
            return self.reference_attack_work("model", wildcards.benchmark, wildcards.split, wildcards.model,
                                              wildcards.role, wildcards.attack)
        return self.reference_model(wildcards.benchmark, wildcards.split, wildcards.model, wildcards.role)[0]

    def all_attack_metrics(self) -> list[str]:
        files = [self.attack_file("metrics.json", r.benchmark, r.split, r.model, r.method, r.seed, entry.label)
                 for r in self.grid.runs for entry in self.grid.attacks.get(r.key, [])]
        for ref in self.grid.references:
            for role in ("target", "retain") if ref.retain is not None else ("target",):
                files += [self.reference_attack_file("metrics.json", ref.benchmark, ref.split, ref.model, role,
                                                     entry.label)
                          for entry in self.reference_attacks(ref.benchmark, ref.split, ref.model)]
        return files

    @property
    def leaderboard_table(self) -> str:
        out = self.grid.config.get("leaderboard", {}).get("out_dir", "site")
        return f"{out}/leaderboard.csv"

    # ---- targets -------------------------------------------------------------------------
    def all_metrics(self) -> list[str]:
        files = [self.run_file("metrics.json", r.benchmark, r.split, r.model, r.method, r.seed)
                 for r in self.grid.runs]
        for ref in self.grid.references:
            for role in ("target", "retain") if ref.retain is not None else ("target",):
                files.append(self.reference_file("metrics.json", ref.benchmark, ref.split, ref.model, role))
        return files + self.all_attack_metrics()

    def final_targets(self) -> list[str]:
        if self.grid.config.get("leaderboard", {}).get("build", True):
            return [self.leaderboard_table] + self.all_metrics() + self.meta_eval_tables()
        return self.all_metrics() + self.meta_eval_tables()

    # ---- metric meta-evaluation (workflows/rules/meta_eval.smk) ----------------------------
    def meta_eval_table(self, benchmark: str = "{benchmark}") -> str:
        return f"{self.results}/meta_eval/{benchmark}/metric_table.json"

    def meta_eval_tables(self) -> list[str]:
        return [self.meta_eval_table(benchmark) for benchmark in sorted(self.grid.meta_eval)]

    def meta_eval_inputs(self, benchmark: str) -> list[str]:
        """Every evaluation of the benchmark's split in this grid: the pools, the attacked runs and
        the retain references' attacks the table reads."""
        prefix = f"{self.results}/{benchmark}/{self.grid.meta_eval[benchmark]['split']}/"
        return [path for path in self.all_metrics() if path.startswith(prefix)]

    # ---- per-job lookups -----------------------------------------------------------------
    def data_location(self, benchmark: str) -> str:
        bench = benchmarks.get(benchmark)
        if bench.generated:
            return self.generated_data_dir(benchmark)
        return str(Path(self.data_dir) / bench.data_subdir) if bench.data_subdir else self.data_dir

    def data_inputs(self, benchmark: str) -> list[str]:
        """Only generated data is a DAG input; the shared copy is checked by the command itself."""
        return [self.generated_data_dir(benchmark)] if benchmarks.get(benchmark).generated else []

    def source_path(self, ref: Reference, source: ModelSource) -> str:
        if source.is_finetuned:
            return self.finetuned_dir(ref.benchmark, ref.model, source.location)
        return source.location

    def source_inputs(self, ref: Reference, source: ModelSource | None) -> list[str]:
        if source is None or not source.is_finetuned:
            return []
        return [self.finetuned_dir(ref.benchmark, ref.model, source.location)]

    def reference_model(self, benchmark: str, split: str, model: str, role: str) -> tuple[str, list[str]]:
        """(path or Hub id given to the command, files the job must wait for)."""
        ref = self.grid.reference(benchmark, split, model)
        source = ref.target if role == "target" else ref.retain
        if source is None:
            raise KeyError(f"{benchmark}/{split}/{model} has no retain model (retain: none)")
        return self.source_path(ref, source), self.source_inputs(ref, source)

    def retain_metrics(self, benchmark: str, split: str, model: str) -> list[str]:
        """Metrics that read the retain model's per-item values (forget quality) wait for it."""
        ref = self.grid.reference(benchmark, split, model)
        if ref.retain is None:
            return []
        return [self.reference_file("per_item.parquet", benchmark, split, model, "retain")]

    def retain_for_attack(self, benchmark: str, split: str, model: str, attack: str, role: str | None = None) -> list[str]:
        """The retain evaluation an attacked model's forget quality compares with: the retain model
        under the same prompt attack (a prompt changes every score), else its plain evaluation. The
        retain model's own attacked evaluation reads the plain one (it cannot wait for itself)."""
        plain = self.retain_metrics(benchmark, split, model)
        entry = next((e for e in self.reference_attacks(benchmark, split, model) if e.label == attack), None)
        if not plain or role == "retain" or entry is None or entry.build().changes_weights:
            return plain
        return [self.reference_attack_file("per_item.parquet", benchmark, split, model, "retain", attack),
                self.reference_attack_file("metrics.json", benchmark, split, model, "retain", attack)]

    def launcher(self, model: str, job: str = "unlearn") -> dict[str, Any]:
        """The model's launcher; fine-tuning jobs (job "finetune") use `finetune_launcher` when given."""
        launcher = {"gpus": 0, "num_processes": 1, "accelerate_config": None, "mixed_precision": "no"}
        launcher.update(self.grid.launcher_entry(model, job))
        return launcher

    def launch_prefix(self, model: str, job: str = "unlearn") -> str:
        """`ubench`, or `accelerate launch ... -m workflows.cli` for multi-process (DDP/FSDP/ZeRO) jobs."""
        launcher = self.launcher(model, job)
        if launcher["num_processes"] <= 1 and not launcher["accelerate_config"]:
            return "ubench"
        parts = ["accelerate", "launch", "--num_processes", str(launcher["num_processes"])]
        if launcher["accelerate_config"]:
            parts += ["--config_file", str(_from_repo(launcher["accelerate_config"]))]
        if launcher["mixed_precision"] != "no":
            parts += ["--mixed_precision", launcher["mixed_precision"]]
        return " ".join(shlex.quote(p) for p in parts + ["-m", "workflows.cli"])

    def gpus(self, model: str, job: str = "unlearn") -> int:
        return int(self.launcher(model, job)["gpus"])

    def finetune_args(self, model: str, benchmark: str | None = None, train_split: str | None = None) -> str:
        """`--preset P --seed S --set key=value ...` for `ubench finetune` from the model's recipe
        (a target's job also takes the recipe's `target:` settings)."""
        if benchmark is None or train_split is None:
            recipe = dict(self.grid.model(model).get("finetune", {}))
            recipe.pop("target", None)
        else:
            recipe = self.grid.finetune_recipe(benchmark, model, train_split)
        flags = []
        if "preset" in recipe:
            flags += ["--preset", recipe.pop("preset")]
        flags += ["--seed", str(recipe.pop("seed", 0))]
        if recipe:
            flags += ["--set"] + [f"{key}={json.dumps(value)}" for key, value in sorted(recipe.items())]
        return " ".join(shlex.quote(f) for f in flags)

    def generator_options(self, benchmark: str) -> dict[str, Any]:
        """Options of a generated benchmark: `generators: {name: {...}}`, over the benchmark's older
        config key where it declares one (`Benchmark.generator_config_key`)."""
        bench = benchmarks.BENCHMARKS.get(benchmark)
        older = bench.generator_config_key if bench is not None else None
        options = dict(self.grid.config.get(older, {})) if older else {}
        options.update(self.grid.config.get("generators", {}).get(benchmark, {}))
        return options

    def generator_args(self, benchmark: str) -> str:
        flags = [f"{key}={json.dumps(value)}" for key, value in sorted(self.generator_options(benchmark).items())]
        return " ".join(shlex.quote(f) for f in (["--set", *flags] if flags else []))

    def run_spec(self, wildcards) -> dict[str, Any]:
        run: Run = self.grid.run(wildcards.benchmark, wildcards.split, wildcards.model, wildcards.method,
                                 wildcards.seed)
        model = self.grid.model(run.model)
        return {
            "benchmark": run.benchmark, "split": run.split, "model": run.model,
            "objective": run.objective, "rectifier": run.rectifier,
            "parametrization": run.parametrization, "seed": run.seed,
            "hyperparameters": run.hyperparameters,
            "prompt_format": model.get("prompt_format"),
            "dtype": model.get("dtype", "float32"),
        }

    def evaluation_variant(self, benchmark: str) -> str:
        """`evaluation.variants[benchmark]`, else `evaluation.variant` when the benchmark has it,
        else the benchmark's default variant."""
        options = self.grid.config.get("evaluation", {})
        bench = benchmarks.get(benchmark)
        if benchmark in options.get("variants", {}):
            return options["variants"][benchmark]
        if options.get("variant") in bench.variants:
            return options["variant"]
        return bench.default_variant

    def evaluation_options(self, benchmark: str) -> str:
        """`ubench evaluate` flags of every evaluation of `benchmark` in this grid."""
        options = self.grid.config.get("evaluation", {})
        flags = ["--variant", self.evaluation_variant(benchmark)]
        if "batch_size" in options:
            flags += ["--batch-size", str(options["batch_size"])]
        if "generation_backend" in options:
            flags += ["--generation-backend", options["generation_backend"]]
        cap = options.get("item_caps", {}).get(benchmark, options.get("item_cap"))
        if cap is not None:
            flags += ["--item-cap", str(cap)]
        return " ".join(shlex.quote(f) for f in flags)

    def prompt_format_flag(self, model: str) -> str:
        """`--prompt-format NAME` when the config names the model's format (a Hub-id target whose
        family cannot be inferred), else nothing."""
        fmt = self.grid.model(model).get("prompt_format")
        return f"--prompt-format {shlex.quote(fmt)}" if fmt else ""

    def reference_identity(self, model: str, role: str) -> str:
        """Reference rows: role and method `target`/`retain`, rectifier `none` (result contract)."""
        pairs = [f"role={role}", f"method={role}", "rectifier=none", f"model={model}"]
        return " ".join(shlex.quote(p) for p in pairs)



def shlex_json(value: Any) -> str:
    """A JSON value as one shell word (for `--options '{...}'` style arguments)."""
    return shlex.quote(json.dumps(value, sort_keys=True))


def _from_repo(path: str) -> Path:
    path = Path(path)
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()
