"""`ubench attack` and `ubench evaluate-attack`: one attack on one unlearned run, then its
evaluation into the result contract (`<run>/attacks/<name>-<variant>/metrics.json`).

`attack` writes the attacked model (weight attacks; the DAG runs it for an entry with `keep_model:
true` and keeps the model) and, last, `attack.json` (what was done: library and version, bits, group
size, relearning steps, the attacked model's path as `model`, or `not_applicable` for a diverged run,
whose model folder then holds only NOT_APPLICABLE.json).
`evaluate-attack` evaluates it with the benchmark's evaluator in trajectory scope (headline forget,
utility and matched metric; an entry's `scope: all` asks for every metric) with the run's identity
plus `attack`; a prompt attack evaluates the
unlearned model itself with the attack's prompt format, and a weight attack applied in the
evaluation (quantize: `applied_in_evaluation`, no `attack` job) attacks the unlearned model it loaded
and records what it did in metric_details.attack.record, as attack.json would (attacking here or
reading a kept model gives the same metrics; metric_details.attack.attacked_model names a kept one).

Recovery needs the values before the attack (the unlearned run's; a reference model's own) and the
target's on the items the attacked model is judged on (relearn/forget-split: the held-out half), so
metric_details.attack.basis carries them as `before` and `target`, recomputed from the per-item
tables with the same item selection. On the retain reference, the recovery of relearning is what
relearning restores in a model that never saw the forget set.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from common import atomic, contract, provenance
from workflows.attack_plan import AttackEntry

RECORD_OK, NOT_APPLICABLE = "ok", "not_applicable"
MARK = "NOT_APPLICABLE.json"


def entry_from_json(text: str | dict) -> AttackEntry:
    value = json.loads(text) if isinstance(text, str) else text
    scope = value.get("scope", "trajectory")
    if scope not in ("trajectory", "all"):
        raise ValueError(f"attack scope must be 'trajectory' or 'all', got {scope!r}")
    return AttackEntry(value["name"], value["variant"], dict(value.get("args", {})), scope)


def _dtype(name: str):
    import torch

    return getattr(torch, name)


def _context(spec: dict[str, Any], data_dir: str | None, tokenizer, fmt, scratch=None, progress=False):
    from evaluation import benchmarks
    from evaluation.encoding import encode_corpus
    from methods.attacks.base import AttackContext

    bench = benchmarks.get(spec["benchmark"])
    return AttackContext(benchmark=bench, data=bench.open(data_dir), split=spec["split"], tokenizer=tokenizer,
                         prompt_format=fmt, seed=int(spec["seed"]),
                         max_length=int(spec["hyperparameters"].get("max_length", bench.default_max_length)),
                         compute_dtype=spec.get("dtype", "float32"), scratch=scratch, progress=progress,
                         encode_corpus=encode_corpus)


def attack(spec: dict[str, Any], entry: AttackEntry, model: str, train_result: str | Path | None,
           data_dir: str | None, out_model: str | Path, record: str | Path, *, progress: bool = False) -> dict[str, Any]:
    """Attack the unlearned `model`; write `out_model` (weight attacks) and then `record`.
    `train_result` None: `model` is a reference model (target or retain), never diverged."""
    from evaluation import models

    attacker = entry.build()
    out_model, record = Path(out_model), Path(record)
    trained = json.loads(Path(train_result).read_text()) if train_result else {"status": "ok"}
    document: dict[str, Any] = {"attack": attacker.parameters(), "run": spec}
    if trained["status"] != "ok":
        document.update(status=NOT_APPLICABLE, reason=f"the run {trained['status']} (step {trained.get('diverged_step')}): "
                                                      "no unlearned weights to attack")
        with atomic.atomic_dir(out_model) as tmp:
            atomic.write_json(tmp / MARK, document)
        atomic.write_json(record, document)
        return document
    if not attacker.changes_weights:
        raise ValueError(f"{entry.label} changes no weights: evaluate the unlearned model with `ubench evaluate-attack`")
    started = time.perf_counter()
    net, tokenizer, fmt = models.load_model(model, prompt_format=spec.get("prompt_format"),
                                            dtype=_dtype(spec.get("dtype", "float32")))
    scratch = out_model.with_name(f".{out_model.name}.attack")
    if scratch.exists():
        shutil.rmtree(scratch)
    try:
        done = attacker.apply(net, _context(spec, data_dir, tokenizer, fmt, scratch, progress))
        with atomic.atomic_dir(out_model) as tmp:
            save_attacked(net, tmp)
            tokenizer.save_pretrained(tmp)
            card = Path(model) / models.MODEL_CARD
            preset = json.loads(card.read_text()).get("preset", "custom") if card.is_file() else "custom"
            models.write_model_card(tmp, preset, fmt.name, unlearned=spec, attack=attacker.parameters())
    finally:
        if scratch.exists():
            shutil.rmtree(scratch)
    document.update(status=RECORD_OK, record=done, seconds=round(time.perf_counter() - started, 3),
                    model=str(out_model))
    atomic.write_json(record, document)
    return document


def save_attacked(net, folder: Path) -> None:
    """The attacked model as the unlearned one was saved: a GRUN run's base weights (quantized or
    relearned) go to `base/` beside its gated edits (methods/parametrizations/grun.py), so the
    evaluation loads it with its gates, never as the bare base model."""
    edits = getattr(net, "grun", None)
    if edits is None:
        net.save_pretrained(folder)
        return
    from methods.parametrizations.grun import save_grun

    save_grun(net, edits, folder, save_base=True)


def attacked_alike(folder: str | Path | None, entry: AttackEntry) -> bool:
    """Whether the evaluation in `folder` (a retain reference's) was made under the same attack."""
    if folder is None or not (Path(folder) / "metrics.json").is_file():
        return False
    attack = contract.read_metrics(Path(folder) / "metrics.json")["identity"].get("attack") or {}
    return (attack.get("name"), attack.get("variant")) == (entry.name, entry.variant)


def _identity(spec: dict[str, Any], attacker) -> dict[str, Any]:
    role = spec.get("role", "unlearned")
    if role in contract.REFERENCE_ROLES:  # reference rows: method = role, rectifier none (result contract)
        return {"role": role, "model": spec["model"], "method": role, "rectifier": "none", "parametrization": "full",
                "seed": 0, "hyperparameters": {}, "attack": attacker.parameters()}
    return {"role": "unlearned", "model": spec["model"], "method": spec["objective"], "rectifier": spec["rectifier"],
            "parametrization": spec.get("parametrization", "full"), "seed": int(spec["seed"]),
            "hyperparameters": spec["hyperparameters"], "attack": attacker.parameters()}


def write_not_applicable(spec, attacker, reason: str, out_dir: str | Path, variant: str | None) -> dict[str, Any]:
    """metrics.json with status not_applicable (no metrics) and an empty per_item.parquet."""
    import pandas as pd

    from evaluation import benchmarks

    ident = {"benchmark": spec["benchmark"], "split": spec["split"], **_identity(spec, attacker)}
    document = {"identity": ident, "metrics": {}, "flags": {},
                "evaluator": {"name": "not-evaluated", "variant": variant or benchmarks.get(spec["benchmark"]).default_variant,
                              "item_cap": None},
                "cost": {}, "provenance": provenance.provenance({"identity": ident}),
                "status": {"state": NOT_APPLICABLE, "reason": reason}}
    out = Path(out_dir)
    with atomic.atomic_path(out / "per_item.parquet") as tmp:
        pd.DataFrame({"eval_set": pd.Series(dtype="string"), "item_index": pd.Series(dtype="int64")}).to_parquet(
            tmp, index=False)
    contract.write_metrics(out / "metrics.json", document)
    return document


def forget_selection(table, questions: set[str] | None):
    """draw(eval_set, n) -> (1, k) positions: the forget items whose question is in `questions`
    (all items when None), every item of the other sets."""
    import numpy as np

    from evaluation.benchmarks import resampling

    def draw(eval_set: str, n: int):
        if eval_set != "forget" or questions is None:
            return np.arange(n)[None, :]
        asked = resampling.item_set(table, "forget")["question"].tolist()
        chosen = [i for i, q in enumerate(asked) if q in questions]
        if not chosen:
            raise ValueError("none of the held-out forget questions is in the per-item table")
        return np.asarray(chosen)[None, :]
    return draw


def metrics_on(bench, names, table, questions, document, references) -> dict[str, float | None]:
    """`names` recomputed from one per-item table on the selected forget items (None where the
    benchmark cannot recompute a metric from items)."""
    values = {}
    for name in names:
        try:
            value = bench.metric_from_items(name, table, forget_selection(table, questions),
                                            split=document["identity"]["split"], evaluator=document["evaluator"],
                                            references=references)
            values[name] = float(value[0])
        except (NotImplementedError, ValueError):
            values[name] = None
    return values


def evaluate_attack(spec: dict[str, Any], entry: AttackEntry, model: str, record: str | Path | None,
                    train_result: str | Path | None, data_dir: str | None, out_dir: str | Path, *,
                    run_results: str | Path | None = None,
                    target_results: str | Path | None = None, variant: str | None = None,
                    retain_reference: str | None = None, batch_size: int = 32, progress: bool = False,
                    generation_backend: str = "auto", item_cap: int | None = None) -> dict[str, Any]:
    import pandas as pd

    from evaluation import benchmarks, evaluate, models

    attacker = entry.build()
    trained = json.loads(Path(train_result).read_text()) if train_result else {"status": "ok"}
    done = json.loads(Path(record).read_text()) if record else {"status": RECORD_OK}
    if trained["status"] != "ok" or done["status"] != RECORD_OK:
        reason = done.get("reason") or f"the run {trained['status']}: no unlearned weights to attack"
        return write_not_applicable(spec, attacker, reason, out_dir, variant)
    bench = benchmarks.get(spec["benchmark"])
    context = _context(spec, data_dir, None, None)
    questions = attacker.evaluation_questions(context)
    # A prompt attack changes the prompt, so forget quality's KS test needs the retain model scored under
    # the same attack (the DAG passes that evaluation); given the plain retain evaluation instead, the
    # attacked row's forget quality stays null (noted below). Recovery reads the matched-forgetting
    # metric, which needs no reference.
    comparable = retain_reference if attacker.changes_weights or attacked_alike(retain_reference, entry) else None
    applied: dict[str, Any] = {}
    if attacker.changes_weights and record is None:  # applied here, to the unlearned model this job loads
        if not attacker.applied_in_evaluation:
            raise ValueError(f"{entry.label} runs in a job of its own: pass --record (the attack.json of `ubench attack`) "
                             "and the attacked model")
        done = None

        def model_transform(net, tokenizer, fmt):
            started = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix=f"{entry.label}-") as scratch:
                attacked = dataclasses.replace(context, tokenizer=tokenizer, prompt_format=fmt,
                                               scratch=Path(scratch), progress=progress)
                applied.update(status=RECORD_OK, record=attacker.apply(net, attacked),
                               seconds=round(time.perf_counter() - started, 3))
    else:
        model_transform = None
    document = evaluate.run(evaluate.EvaluationSpec(
        model, spec["benchmark"], data_dir, spec["split"], variant, out_dir, retain_reference=comparable,
        identity=_identity(spec, attacker), batch_size=batch_size, progress=progress,
        generation_backend=generation_backend, prompt_format=spec.get("prompt_format"),
        prompt_transform=None if attacker.changes_weights else functools.partial(attacker.prompt_format,
                                                                                 context=context),
        model_transform=model_transform, transform_dtype=spec.get("dtype", "float32"), scope=entry.scope,
        item_cap=item_cap))
    done = done or applied
    out = Path(out_dir)
    references = {}
    if comparable:
        references["retain"] = pd.read_parquet(Path(comparable) / "per_item.parquet")
    knowledge = bench.matched.metric if bench.matched is not None else None
    names = bench.trajectory_metrics(document["metrics"])
    if questions is not None:  # judged on the held-out forget items only
        table = pd.read_parquet(out / "per_item.parquet")
        recomputed = metrics_on(bench, document["metrics"], table, questions, document, references)
        document["metrics"] = recomputed
    basis = {}
    for role, folder in (("before", run_results), ("target", target_results)):
        if folder is None or not (Path(folder) / "metrics.json").is_file():
            continue
        theirs = contract.read_metrics(Path(folder) / "metrics.json")
        if questions is None:
            basis[role] = {n: theirs["metrics"].get(n) for n in names}
        else:
            basis[role] = metrics_on(bench, names, pd.read_parquet(Path(folder) / "per_item.parquet"), questions,
                                     theirs, references)
    document.setdefault("metric_details", {})["attack"] = {
        "parameters": attacker.parameters(), "record": done.get("record", {}),
        "forget_items": "all" if questions is None else f"{len(questions)} held-out questions", "scope": entry.scope,
        "knowledge_metric": knowledge, "basis": basis,
        **({"attacked_model": done["model"]} if done.get("model") else {}),
        **({} if comparable or not retain_reference else
           {"retain_reference": "not used: it was scored without this prompt attack (forget quality null)"})}
    document["cost"]["attack_seconds"] = done.get("seconds", 0.0)
    (out / "metrics.json").unlink(missing_ok=True)
    contract.write_metrics(out / "metrics.json", document)
    return document


def _attack(args) -> int:
    document = attack(json.loads(args.spec), entry_from_json(args.attack), args.model, args.train_result, args.data,
                      args.out_model, args.record, progress=not args.quiet)
    print(json.dumps({k: document.get(k) for k in ("status", "reason", "record", "model")}, indent=2))
    return 0


def _evaluate_attack(args) -> int:
    document = evaluate_attack(json.loads(args.spec), entry_from_json(args.attack), args.model, args.record,
                               args.train_result, args.data, args.out, run_results=args.run_results,
                               target_results=args.target_results, variant=args.variant,
                               retain_reference=args.retain_reference, batch_size=args.batch_size,
                               progress=not args.quiet, generation_backend=args.generation_backend,
                               item_cap=args.item_cap)
    print(json.dumps({"out": args.out, "status": document["status"], "metrics": document["metrics"]}, indent=2))
    return 0


ATTACK_HELP = ('attack as JSON: {"name": "quantize", "variant": "int4", "args": {}, "scope": "trajectory"} (scope "all": '
               'every metric of the benchmark; the Snakefile writes it)')


def register(subparsers: argparse._SubParsersAction) -> None:
    from workflows.commands import SPEC_HELP

    fmt = argparse.ArgumentDefaultsHelpFormatter
    at = subparsers.add_parser(
        "attack", formatter_class=fmt, help="attack one unlearned run (quantize, relearn): the attacked model",
        description="Load the unlearned model, apply a weight attack of methods/attacks and save the attacked "
                    "model atomically, then attack.json (library, version, bits, group size, relearning steps). "
                    "A diverged run is recorded as not applicable.")
    at.add_argument("--spec", required=True, help=SPEC_HELP)
    at.add_argument("--attack", required=True, help=ATTACK_HELP)
    at.add_argument("--model", required=True, help="the unlearned model folder")
    at.add_argument("--train-result", default=None,
                    help="JSON written by `ubench unlearn` (omit for a reference model: spec role target/retain)")
    at.add_argument("--data", default=None, help="benchmark data folder (relearn trains on it)")
    at.add_argument("--out-model", required=True, help="folder for the attacked model")
    at.add_argument("--record", required=True, help="attack.json to write (what the attack did)")
    at.add_argument("--quiet", action="store_true", help="no progress bar")
    at.set_defaults(func=_attack)

    ev = subparsers.add_parser(
        "evaluate-attack", formatter_class=fmt, help="evaluate an attacked run into <run>/attacks/<attack>/",
        description="`ubench evaluate` of an attacked model (the unlearned model attacked in this job: quantized, "
                    "relearned, or with the attack's prompt format; or a model `ubench attack` wrote), with the "
                    "run's identity plus the attack, the unlearned and target "
                    "values on the same items (metric_details.attack.basis) for the leaderboard's recovery.")
    ev.add_argument("--spec", required=True, help=SPEC_HELP)
    ev.add_argument("--attack", required=True, help=ATTACK_HELP)
    ev.add_argument("--model", required=True,
                    help="the unlearned model (attacked here: prompt attacks, quantize, relearn) or, with --record, "
                         "the model `ubench attack` wrote")
    ev.add_argument("--record", default=None,
                    help="attack.json of `ubench attack`; omitted, a weight attack is applied to --model in this job")
    ev.add_argument("--train-result", default=None,
                    help="JSON written by `ubench unlearn` (omit for a reference model: spec role target/retain)")
    ev.add_argument("--data", default=None, help="benchmark data folder")
    ev.add_argument("--run-results", default=None,
                    help="the run's results folder (its metrics.json, per_item.parquet); a reference's own folder")
    ev.add_argument("--target-results", default=None, help="the target reference's results folder")
    ev.add_argument("--retain-reference", default=None, help="evaluation folder of the retain model")
    ev.add_argument("--variant", default=None, help="evaluator variant (default: the benchmark's own)")
    ev.add_argument("--batch-size", type=int, default=32)
    from evaluation.cli import add_generation_backend_arg, add_item_cap_arg

    add_generation_backend_arg(ev)
    add_item_cap_arg(ev)
    ev.add_argument("--out", required=True, help="folder for metrics.json and per_item.parquet")
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(func=_evaluate_attack)
