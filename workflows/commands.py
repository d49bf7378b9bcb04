"""Pipeline glue subcommands of `ubench`: unlearn, evaluate-run, grid, config show.

Each command is a thin shell over a function you can call from Python (`unlearn(...)`,
`evaluate_run(...)`); the Snakemake rules call the commands, one job each.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from common import atomic, contract, provenance
from workflows.run_spec import RunSpec

# run-spec keys that are not TrainConfig fields
TRAIN_CONFIG_EXTRAS = ("max_length", "analyzers", "answer_labels", "corpus", "evaluate_every", "keep_checkpoints",
                       "idk_draw", "global_batch_size")


# ---------------------------------------------------------------------------------------------
# unlearn

def run_spec(spec: RunSpec | dict[str, Any]) -> RunSpec:
    """A RunSpec, or one read from the spec's parsed JSON."""
    return spec if isinstance(spec, RunSpec) else RunSpec.from_json(spec)


def train_config_from_spec(spec: RunSpec | dict[str, Any]):
    """TrainConfig for one run spec (written by the Snakefile from the grid)."""
    from methods.train import TrainConfig

    run = run_spec(spec)
    hyper = {k: v for k, v in run.hyperparameters.items() if k not in TRAIN_CONFIG_EXTRAS}
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(hyper) - known)
    if unknown:
        raise ValueError(f"hyperparameters {unknown} are not TrainConfig fields; accepted: "
                         f"{sorted(known - {'objective', 'rectifier', 'parametrization', 'seed'})}")
    if "adam_betas" in hyper:
        hyper["adam_betas"] = tuple(hyper["adam_betas"])
    # the model's configured dtype is the compute dtype; weights train as fp32 masters (methods/precision.py)
    hyper.setdefault("compute_dtype", run.dtype)
    return TrainConfig(objective=run.objective, rectifier=run.rectifier, parametrization=run.parametrization,
                       seed=run.seed, **hyper)


def check_global_batch(spec: RunSpec | dict[str, Any], config, num_processes: int) -> None:
    """A spec whose grid derived grad_accum from `global_batch_size` for one process count must run
    under that count: launched with another, a step would consume another number of examples."""
    wanted = run_spec(spec).global_batch_size
    if wanted is None:
        return
    from common.global_batch import global_batch

    got = global_batch(config.batch_size, config.grad_accum, num_processes)
    if got != wanted:
        raise ValueError(f"global_batch_size {wanted} but batch_size {config.batch_size} x grad_accum "
                         f"{config.grad_accum} x {num_processes} processes = {got}: the grid derived grad_accum "
                         f"for another process count; launch with the model's launcher.num_processes "
                         f"(or re-plan with the launcher you use)")


def unlearning_streams(objective: str, corpora: dict, tokenizer, fmt, max_length: int, seed: int,
                       answer_labels: str = "answer", idk_draw: str = "epoch"):
    """The objective's streams from a benchmark's forget/retain corpora (QA pairs or raw text).
    `answer_labels` "answer_tag+answer" labels Phi's "Answer: " tag too, as TOFU-legacy code trains.
    `idk_draw`: refusals redrawn each epoch ("epoch", TOFU/OU/G-effect) or drawn once per item ("once", GRUN)."""
    from evaluation.encoding import encode_corpus, encode_qa
    from methods.data import build_streams, build_text_streams

    forget, retain = corpora["forget"], corpora.get("retain")
    if forget.kind == "qa":
        return build_streams(objective, forget.items, retain.items if retain else [],
                             lambda q, a: encode_qa(tokenizer, fmt, q, a, max_length, labels_from=answer_labels), seed,
                             idk_draw)
    return build_text_streams(objective, encode_corpus(tokenizer, fmt, forget, max_length),
                              encode_corpus(tokenizer, fmt, retain, max_length) if retain else [])


def _is_main_process() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process


def unlearn(spec: RunSpec | dict[str, Any], data_dir: str | None, target: str, out_model: str | Path,
            train_log: str | Path, train_result: str | Path, *, threads: int | None = None,
            progress: bool = True, snapshots: str | Path | None = None) -> dict[str, Any]:
    """Unlearn `target` as `spec` says; write the model, train_log.jsonl and the train result.

    With the `evaluate_every: K` hyperparameter, the trainable state at steps K, 2K, ... (before the
    last) is written to the folder `snapshots` (default: `snapshots` beside `out_model`), one
    `step-NNNNNNN/` each (methods/snapshots.py); a diverged run leaves that folder empty.

    Every output is written atomically, model first, train result last, so a killed job leaves
    either nothing or complete files. A diverged run saves no weights (its model folder holds only
    DIVERGED.json) and its train result carries the status for `evaluate-run`.
    """
    import torch

    from evaluation import benchmarks, models
    from methods.checkpoint import full_model_state, is_sharded
    from methods.registry import PARAMETRIZATIONS
    from methods.train import train

    if threads:
        torch.set_num_threads(threads)
    run = run_spec(spec)
    config = train_config_from_spec(run)
    config.validate()
    from accelerate import PartialState

    check_global_batch(run, config, PartialState().num_processes)
    every = run.evaluate_every
    if every is not None:
        from methods import snapshots as snapshot_files

        snapshot_files.check_supported(config.parametrization_args)
        snapshots = Path(snapshots) if snapshots is not None else Path(out_model).with_name("snapshots")
    bench = benchmarks.get(run.benchmark)
    corpora = bench.corpora_for_run(bench.open(data_dir), run.split, run.corpus)  # data errors before the model loads
    max_length = run.max_length(bench.default_max_length)
    # loaded in the configured dtype: frozen weights stay in it, train() upcasts the trainable ones to fp32
    model, tokenizer, fmt = models.load_model(target, prompt_format=run.prompt_format, dtype=_torch_dtype(run.dtype))
    streams = unlearning_streams(config.objective, corpora, tokenizer, fmt, max_length, config.seed,
                                 run.answer_labels, run.idk_draw)

    out_model, main = Path(out_model), _is_main_process()
    scratch = out_model.with_name(f".{out_model.name}.training")  # same path on every rank
    if main and scratch.exists():
        shutil.rmtree(scratch)
    try:
        result = train(model, streams, config, scratch, tokenizer.pad_token_id,
                       analyzers=run.analyzers, progress=progress,
                       snapshot_every=every)
        document = {
            "status": result.status, "diverged_step": result.diverged_step, "reason": result.reason,
            "cost": {k: getattr(result, k) for k in ("train_seconds", "optimizer_steps", "backward_passes",
                                                     "peak_memory_bytes", "trainable_parameters",
                                                     "gradient_buffer_bytes", "precision")},
            "gradient_buffer_bytes": result.gradient_buffer_bytes,
            "spec": run.raw, "target": target, "train_config": dataclasses.asdict(config),
        }
        # FSDP2: gathering the full weights is a collective, so every rank joins before rank 0 saves
        full_state = full_model_state(model) if result.status == "ok" and is_sharded(model) else None
        if not main:
            return document
        with atomic.atomic_dir(out_model) as tmp:
            if result.status == "ok":
                model.eval()
                saver = PARAMETRIZATIONS.get(config.parametrization)(**config.parametrization_args)
                saver.save(model, tmp, **({} if full_state is None else {"state_dict": full_state}))
                tokenizer.save_pretrained(tmp)
                card = _target_card(target)
                models.write_model_card(tmp, card.get("preset", "custom"), fmt.name, unlearned=run.raw,
                                        **models.inherited_card_fields(target))
            else:
                atomic.write_json(tmp / "DIVERGED.json", document)
        if every is not None:  # before the train result, which marks the job complete
            with atomic.atomic_dir(snapshots) as tmp:
                written = scratch / "snapshots"
                if result.status == "ok" and written.is_dir():
                    for step in sorted(written.iterdir()):
                        shutil.move(str(step), str(tmp / step.name))
        log = scratch / "train_log.jsonl"
        atomic.write_text(train_log, log.read_text(encoding="utf-8") if log.exists() else "")
        for extra in sorted(scratch.glob("*")):  # analyzer outputs (e.g. G-effect) next to the log
            if extra.is_file() and extra.name not in ("train_log.jsonl", "train_status.json"):
                atomic.write_bytes(Path(train_log).with_name(extra.name), extra.read_bytes())
        atomic.write_json(train_result, document)
        return document
    finally:
        if main and scratch.exists():
            shutil.rmtree(scratch)


def _torch_dtype(name: str):
    import torch

    return getattr(torch, name)


def _target_card(target: str) -> dict[str, Any]:
    from evaluation import models

    card = models.read_model_card(Path(target)) if Path(target).is_dir() else None  # refuses an unsafe preset
    return card if card is not None else {"preset": target}


# ---------------------------------------------------------------------------------------------
# evaluate-run

def evaluate_run(spec: RunSpec | dict[str, Any], model: str, train_result: str | Path, data_dir: str | None,
                 out_dir: str | Path, *, variant: str | None = None, retain_reference: str | None = None,
                 batch_size: int = 32, progress: bool = True, generation_backend: str = "auto",
                 snapshots: str | Path | None = None, target: str | None = None,
                 item_cap: int | None = None) -> dict[str, Any]:
    """Evaluate an unlearned model into the result contract; a diverged run is recorded, not evaluated.

    A run with `evaluate_every` is also evaluated at each snapshot (default folder: `snapshots`
    beside `model`), giving metrics.json's `trajectory` block and trajectory.parquet; a LoRA run's
    snapshots are merged into `target` (the run's starting model, its W0)."""
    run = run_spec(spec)
    if run.model is None:
        raise ValueError("run spec lacks 'model' (the grid's model name, recorded in the result identity)")
    identity = {"role": "unlearned", "model": run.model, "method": run.objective, "rectifier": run.rectifier,
                "parametrization": run.parametrization, "seed": run.seed, "hyperparameters": run.hyperparameters}
    trained = json.loads(Path(train_result).read_text())
    if trained["status"] != "ok":
        return write_diverged(run, identity, trained, out_dir, variant)
    from evaluation import evaluate

    every = run.evaluate_every
    if every is not None and snapshots is None:
        snapshots = Path(model).with_name("snapshots")
    from methods.registry import PARAMETRIZATIONS

    parametrization = PARAMETRIZATIONS.get(run.parametrization)
    rebuild = lora_rebuild(run, target) if every is not None and parametrization.snapshots_need_base else None
    details = _grun_gates(run) if parametrization.reports_gates else None
    return evaluate.run(evaluate.EvaluationSpec(
        model, run.benchmark, data_dir, run.split, variant, out_dir, retain_reference=retain_reference,
        train_result=str(train_result), identity=identity, batch_size=batch_size, progress=progress,
        generation_backend=generation_backend, snapshots=snapshots if every is not None else None, every=every,
        snapshot_rebuild=rebuild, details=details, item_cap=item_cap))


def _grun_gates(run: RunSpec):
    """GRUN runs: gate values on forget vs retain prompts (metric_details.grun_gates), measured on
    the model and data the evaluation has loaded."""
    from evaluation import grun_gates

    return lambda model, tokenizer, fmt, data: {grun_gates.DETAILS_KEY: grun_gates.measure_run(
        run.raw, model, tokenizer, fmt, data)}


def lora_rebuild(run: RunSpec, target: str | None):
    """The LoRA snapshot merger over the run's target, loaded on the CPU in the training dtype."""
    from evaluation import models
    from methods.snapshots import LoraRebuild

    if target is None:
        raise ValueError("a LoRA run with evaluate_every is evaluated against its target's base weights: pass "
                         "--target (the model `ubench unlearn` started from)")
    base, _, _ = models.load_model(target, prompt_format=run.prompt_format, dtype=_torch_dtype(run.dtype))
    return LoraRebuild(base, run.hyperparameters.get("parametrization_args", {}))


def write_diverged(spec: RunSpec | dict[str, Any], identity: dict[str, Any], trained: dict[str, Any],
                   out_dir: str | Path, variant: str) -> dict[str, Any]:
    """metrics.json with status diverged (no metrics) and an empty per_item.parquet; a run with
    `evaluate_every` also gets a trajectory.parquet without points, so every output the trajectory
    rule declares exists and Snakemake keeps the diverged row instead of deleting it as incomplete."""
    import pandas as pd

    run = run_spec(spec)
    ident = {"benchmark": run.benchmark, "split": run.split, **identity}
    document = {
        "identity": ident,
        "metrics": {},
        "flags": {"diverged": True},
        "evaluator": {"name": "not-evaluated", "variant": variant or _default_variant(run.benchmark),
                      "item_cap": None},
        "cost": trained.get("cost", {}),
        "provenance": provenance.provenance({"identity": ident, "train_config": trained.get("train_config")}),
        "status": {"state": "diverged", "step": trained.get("diverged_step"), "reason": trained.get("reason")},
    }
    contract.checked_metrics(document)  # invalid: no file at all
    out = Path(out_dir)
    (out / "metrics.json").unlink(missing_ok=True)  # metrics.json marks completion: written last
    with atomic.atomic_path(out / "per_item.parquet") as tmp:
        pd.DataFrame({"eval_set": pd.Series(dtype="string"), "item_index": pd.Series(dtype="int64")}).to_parquet(
            tmp, index=False)
    if run.evaluate_every is not None:
        with atomic.atomic_path(out / contract.TRAJECTORY_FILE) as tmp:
            contract.trajectory_table({"points": []}).to_parquet(tmp, index=False)
    contract.write_metrics(out / "metrics.json", document)
    return document


def _default_variant(benchmark: str) -> str:
    from evaluation import benchmarks

    return benchmarks.get(benchmark).default_variant


# ---------------------------------------------------------------------------------------------
# grid / config show

def _load_grid(configfiles: list[str], overrides: list[str]):
    from workflows import grid

    config = grid.load_config(*configfiles)
    for pair in overrides:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--config expects key=value, got {pair!r}")
        config[key] = json.loads(value) if value[:1] in "[{0123456789-" or value in ("true", "false", "null") else value
    return grid.build(config)


def _grid(args) -> int:
    from workflows import grid as grid_module

    g = _load_grid(args.configfile, args.config)
    if args.json:
        rows = [{**dataclasses.asdict(run), "method_dir": run.method,
                 "results": str(run.path(g.config.get("results_dir", "results")))} for run in g.runs]
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    for run in g.runs:
        hyper = json.dumps(run.hyperparameters, sort_keys=True, separators=(",", ":"))
        print(f"{run.benchmark}/{run.split}/{run.model}/{run.method}/seed{run.seed}  {hyper}")
    counts = grid_module.summary(g)
    print(f"\n{len(g.runs)} runs; jobs per rule: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v),
          file=sys.stderr)
    return 0


def _config_show(args) -> int:
    import yaml

    g = _load_grid(args.configfile, args.config)
    print(yaml.safe_dump(g.config, sort_keys=False), end="")
    return 0


def _config_check(args) -> int:
    g = _load_grid(args.configfile, args.config)
    names = ", ".join(args.configfile) or "config/default.yaml"
    print(f"{names}: ok ({len(g.runs)} runs, {len(g.references)} reference model sets)")
    return 0


def _plan_memory(args) -> int:
    from workflows import memory_plan_grid

    g = _load_grid(args.configfile, args.config)
    return 0 if memory_plan_grid.report(g) else 1


def _unlearn(args) -> int:
    document = unlearn(RunSpec.from_json(args.spec), args.data, args.target, args.out_model, args.train_log,
                       args.train_result, threads=args.threads, progress=not args.quiet,
                       snapshots=args.snapshots)
    print(json.dumps({k: document[k] for k in ("status", "diverged_step", "reason", "cost")}, indent=2))
    return 0


def _evaluate_run(args) -> int:
    document = evaluate_run(RunSpec.from_json(args.spec), args.model, args.train_result, args.data, args.out,
                            variant=args.variant, retain_reference=args.retain_reference,
                            batch_size=args.batch_size, progress=not args.quiet,
                            generation_backend=args.generation_backend, snapshots=args.snapshots,
                            target=args.target, item_cap=args.item_cap)
    from evaluation.cli import summary_metrics

    print(json.dumps({"out": args.out, "status": document["status"],
                      "metrics": summary_metrics(document["metrics"])}, indent=2))
    return 0


SPEC_HELP = ('run spec as JSON: {"benchmark", "split", "model", "objective", "rectifier", '
             '"parametrization", "seed", "hyperparameters", "prompt_format"} (the Snakefile writes it; '
             'see `ubench grid --json`)')


def register(subparsers: argparse._SubParsersAction) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter

    un = subparsers.add_parser(
        "unlearn", formatter_class=fmt, help="unlearn one run of a grid (model, train_log.jsonl, train result)",
        description="Load the target, build the forget/retain streams of the benchmark split, run the "
                    "training loop (methods.train) and save the unlearned model atomically. A diverged run "
                    "saves no weights; its train result records the step and reason.")
    un.add_argument("--spec", required=True, help=SPEC_HELP)
    un.add_argument("--data", default=None, help="benchmark data folder (a generated benchmark: the generated folder)")
    un.add_argument("--target", required=True, help="the model to unlearn: folder, Hub id or preset")
    un.add_argument("--out-model", required=True, help="folder for the unlearned model")
    un.add_argument("--train-log", required=True, help="train_log.jsonl to write (result contract)")
    un.add_argument("--train-result", required=True, help="JSON with status and cost, read by evaluate-run")
    un.add_argument("--snapshots", default=None,
                    help="folder for the trajectory snapshots of a run with evaluate_every "
                         "(default: `snapshots` beside --out-model)")
    un.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    un.add_argument("--quiet", action="store_true", help="no progress bar")
    un.set_defaults(func=_unlearn)

    ev = subparsers.add_parser(
        "evaluate-run", formatter_class=fmt, help="evaluate an unlearned run (diverged runs are recorded)",
        description="`ubench evaluate` for one run of a grid, with the run's identity and training cost; "
                    "a diverged run gets metrics.json with status diverged and an empty per_item.parquet.")
    ev.add_argument("--spec", required=True, help=SPEC_HELP)
    ev.add_argument("--model", required=True, help="the unlearned model folder")
    ev.add_argument("--train-result", required=True, help="JSON written by `ubench unlearn`")
    ev.add_argument("--data", default=None, help="benchmark data folder")
    ev.add_argument("--variant", default=None,
                    help="evaluator variant of the benchmark (default: the benchmark's own default)")
    ev.add_argument("--retain-reference", default=None, help="evaluation folder of the retain model")
    ev.add_argument("--snapshots", default=None,
                    help="trajectory snapshots of a run with evaluate_every (default: `snapshots` beside --model)")
    ev.add_argument("--target", default=None,
                    help="the run's starting model; needed by LoRA runs with evaluate_every (their W0)")
    ev.add_argument("--batch-size", type=int, default=32)
    from evaluation.cli import add_generation_backend_arg, add_item_cap_arg

    add_generation_backend_arg(ev)
    add_item_cap_arg(ev)
    ev.add_argument("--out", required=True, help="run folder for metrics.json and per_item.parquet")
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(func=_evaluate_run)

    def add_config_args(parser):
        parser.add_argument("--configfile", nargs="*", default=[],
                            help="config files stacked over config/default.yaml, as for snakemake")
        parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                            help="top-level overrides, as for snakemake --config")

    gr = subparsers.add_parser("grid", formatter_class=fmt, help="list the runs a config expands to",
                               description="One line per run (benchmark/split/model/method/seed and its "
                                           "hyperparameters), then the job counts per rule.")
    add_config_args(gr)
    gr.add_argument("--json", action="store_true", help="machine-readable output")
    gr.set_defaults(func=_grid)

    pm = subparsers.add_parser(
        "plan-memory", formatter_class=fmt, help="predicted per-GPU memory of every unlearning job of a config",
        description="Per job: weights, optimizer, gradient buffers, frozen reference, bf16-master gradients, "
                    "autocast's bf16 weight casts, FSDP unsharded blocks, activations (estimate) and runtime, "
                    "in GB per GPU, and whether that fits the launcher's "
                    "GPUs (launcher.gpu_memory_gb, default 80). Architectures come from a built-in table "
                    "(methods/memory_plan.py), nothing is downloaded. Exit status 1 when a job does not fit.")
    add_config_args(pm)
    pm.set_defaults(func=_plan_memory)

    cfg = subparsers.add_parser("config", help="config utilities (show, check)")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="<config command>", required=True)
    show = cfg_sub.add_parser("show", formatter_class=fmt, help="print the merged, validated config",
                              description="The config Snakemake sees: default.yaml with --configfile "
                                          "files stacked on top, validated against the schema.")
    add_config_args(show)
    show.set_defaults(func=_config_show)
    check = cfg_sub.add_parser(
        "check", formatter_class=fmt, help="check config files; a YAML error names file:line:column",
        description="Every load-time check of `snakemake -n` (YAML syntax, schema, names, arguments) without "
                    "planning the DAG. Snakemake reads --configfile files before the Snakefile runs and reports "
                    "a YAML syntax error without its line (only --verbose shows it): run this instead.")
    add_config_args(check)
    check.set_defaults(func=_config_check)
