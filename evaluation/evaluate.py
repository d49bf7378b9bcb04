"""`ubench evaluate` as a library call: evaluate one model and write metrics.json + per_item.parquet."""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from common import atomic, contract, provenance
from evaluation import backends, benchmarks, models
from evaluation.benchmarks.base import EvalContext

COST_FIELDS = ("train_seconds", "optimizer_steps", "backward_passes", "peak_memory_bytes", "trainable_parameters",
               "gradient_buffer_bytes", "precision")
IDENTITY_DEFAULTS = {"role": "unlearned", "method": "unknown", "rectifier": "none",
                     "parametrization": "full", "seed": 0, "hyperparameters": {}}


def parse_identity(pairs: list[str]) -> dict:
    """`key=value` strings; seed becomes int, hyperparameters is parsed as JSON."""
    identity = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--identity expects key=value, got {pair!r}")
        if key == "seed":
            value = int(value)
        elif key == "hyperparameters":
            value = json.loads(value)
        identity[key] = value
    return identity


def model_name_from_path(path: str) -> str:
    """A contract-safe model name from a folder or Hub id (e.g. `tiny-llama`, `phi-1_5`)."""
    card = models.read_model_card(Path(path)) if Path(path).is_dir() else None  # refuses a path as `preset`
    source = card["preset"] if card and card.get("preset") else Path(path.rstrip("/")).name
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", source).strip("-.")  # a Hub id owner/name: owner-name
    return re.sub(r"\.{2,}", ".", name)[:64] or "model"


def data_folder(bench, folder: str | Path | None, log=None) -> str | Path | None:
    """`--data` is the data root (the pipeline's data_dir) or the benchmark's own folder, for every
    benchmark: a root holding the benchmark's subfolder resolves to it, and a benchmark that reads
    several folders side by side (`root_folders`) given the first of them resolves to its parent.
    Without a folder, a benchmark read from the Hub fails at once when the Hub is unreachable (not
    after a DNS timeout)."""
    if folder is None:
        if not bench.generated and bench.hub_id and not models.offline_variable() and not models.hub_reachable():
            holding = bench.data_subdir or "/ and ".join(bench.root_folders)
            raise ValueError(f"{bench.name}: no --data and the Hugging Face Hub cannot be reached: pass --data "
                             f"DIR (the data root holding {holding}/, or the benchmark's own folder)")
        return None
    path = Path(folder).expanduser()
    resolved = path
    if bench.data_subdir and (path / bench.data_subdir).is_dir():
        resolved = path / bench.data_subdir
    elif bench.data_subdir == "" and bench.root_folders and _is_root_folder(path, bench.root_folders[0]):
        resolved = path.parent
    if resolved != path and log is not None:
        log(f"data: {resolved} (the {bench.name} folder of {path})")
    return resolved if resolved != path else folder


def _is_root_folder(path: Path, marker: str) -> bool:
    """`path` is the `marker` folder of a data root (and not a root holding one itself)."""
    return not (path / marker).is_dir() and (path.parent / marker).is_dir() \
        and path.resolve() == (path.parent / marker).resolve()


def cost_from_train_result(path: str | Path | None) -> dict:
    """The training cost fields of the unlearning run's result JSON (flat or under `cost`)."""
    if path is None:
        return {}
    document = json.loads(Path(path).read_text())
    source = document.get("cost", document)
    return {key: source[key] for key in COST_FIELDS if key in source}


@dataclass
class EvaluationSpec:
    """One evaluation `run` performs: the `ubench evaluate` arguments (the first six in its order).

    `variant` None means the benchmark's default evaluator variant; `retain_reference` is the output
    folder of `run` on the benchmark's reference model (TOFU retain model, MUSE retrain).
    `dtype` defaults to bf16 on a GPU and fp32 on the CPU (models.evaluation_dtype); the evaluator
    block records the one used.

    `snapshots` (with `every`, the run's evaluate_every): the folder of trajectory snapshots written
    by `ubench unlearn`; each is swapped into the loaded model and evaluated in scope "trajectory",
    giving the `trajectory` block of metrics.json and `out_dir/trajectory.parquet` (interface I1);
    `snapshot_rebuild` maps a snapshot's tensors to the model's (LoRA: methods.snapshots.LoraRebuild).

    `details(model, tokenizer, prompt_format, data)` (optional) measures more of the final model
    (e.g. GRUN's gates); its {name: value} entries join metric_details.

    `prompt_transform(prompt_format)` (optional) replaces the model's prompt format (a prompt attack,
    methods/attacks/prompt.py); `model_transform(model, tokenizer, prompt_format)` (optional) changes
    the loaded model in place before anything is scored (a weight attack applied in the evaluation
    process: quantization, relearning); for it the model is loaded in `transform_dtype` (default: the
    evaluation dtype) and its base weights are then cast to the evaluation dtype, as saving the
    attacked model and loading it for evaluation would; `scope` is the EvalContext scope of the main evaluation ("all", or
    "trajectory": only what the headline and matched metrics need, as attacks are evaluated).

    `item_cap`: every eval set on its first N items (recorded as the evaluator block's `item_cap`).
    `log` (e.g. print): told which prompt format was chosen and why."""
    model_path: str
    benchmark: str
    data_dir: str | Path | None
    split: str
    variant: str | None
    out_dir: str | Path
    retain_reference: str | None = None
    train_result: str | None = None
    identity: dict | None = None
    batch_size: int = 32
    progress: bool = True
    prompt_format: str | None = None
    dtype: str | None = None
    generation_backend: str = "auto"
    snapshots: str | Path | None = None
    every: int | None = None
    snapshot_rebuild: Callable | None = None
    details: Callable | None = None
    prompt_transform: Callable | None = None
    model_transform: Callable | None = None
    transform_dtype: str | None = None
    scope: str = "all"
    item_cap: int | None = None
    log: Callable | None = None


def run(spec: EvaluationSpec) -> dict:
    """Evaluate `spec.model_path` and write `out_dir/per_item.parquet`, then `out_dir/metrics.json`
    (the completion mark); the fields are described on EvaluationSpec. A model converted by `ubench
    models fetch` (its card has a `weights` record) gets that record as `provenance.model_weights`."""
    from evaluation.benchmarks.item_cap import check_item_cap

    check_item_cap(spec.item_cap)
    bench = benchmarks.get(spec.benchmark)
    bench.check_split(spec.split)
    variant = spec.variant or bench.default_variant
    bench.check_variant(variant)
    data = bench.open(data_folder(bench, spec.data_dir, spec.log))  # data problems surface before the model loads
    # identity_notes reads the split's data (MUSE: a corpus the folder lacks, or the Hub copy): before the model too
    ident = {"benchmark": spec.benchmark, "split": spec.split, "model": model_name_from_path(spec.model_path),
             **IDENTITY_DEFAULTS, **bench.identity_notes(data, spec.split), **(spec.identity or {})}
    reference = bench.load_reference(spec.retain_reference) if spec.retain_reference else None
    contract.check_safe_name("identity model", ident["model"])  # a folder name: refused before the model loads
    start = time.perf_counter()
    device = models.evaluation_device()
    dtype = spec.dtype or models.evaluation_dtype(device)
    loaded_dtype = (spec.transform_dtype or dtype) if spec.model_transform is not None else dtype
    model, tokenizer, fmt = models.load_model(spec.model_path, prompt_format=spec.prompt_format, device=device,
                                              dtype=loaded_dtype)
    load_seconds = time.perf_counter() - start
    if spec.model_transform is not None:
        spec.model_transform(model, tokenizer, fmt)
        model.eval().requires_grad_(False)
        if loaded_dtype != dtype:
            models.cast_base_weights(model, dtype)
    if spec.prompt_transform is not None:
        fmt = spec.prompt_transform(fmt)
    if spec.log is not None:
        spec.log(f"prompt format: {fmt.name} ({models.format_origin(spec.prompt_format, spec.model_path)})")
    with backends.request(spec.generation_backend) as made:  # evaluation/backends: transformers or vLLM
        output = bench.evaluate(EvalContext(model, tokenizer, fmt, data, spec.split, variant, reference,
                                            batch_size=spec.batch_size, progress=spec.progress, role=ident["role"],
                                            scope=spec.scope, item_cap=spec.item_cap))
    # one evaluator name per family, the one the leaderboard accepts (`ubench-<family>`); the harness
    # that scored inside it (WMDP: lm-eval) and the variant stay in the benchmark's own fields
    output.result["evaluator"]["name"] = f"ubench-{bench.family}"
    selection = backends.summary(made, spec.generation_backend)
    output.result["evaluator"].setdefault("generation_backend", selection["backend"])  # TOFU names its decoder
    output.result["evaluator"]["generation_backend_selection"] = selection
    if spec.details is not None:  # on the final model, before trajectory snapshots replace its weights
        output.result.setdefault("metric_details", {}).update(spec.details(model, tokenizer, fmt, data))
    cost = {**cost_from_train_result(spec.train_result), **output.cost, "load_seconds": round(load_seconds, 3),
            "eval_seconds": round(time.perf_counter() - start, 3)}
    block = None
    if spec.snapshots is not None:
        from evaluation import trajectory as trajectory_eval

        started = time.perf_counter()
        context = EvalContext(model, tokenizer, fmt, data, spec.split, variant, reference,
                              batch_size=spec.batch_size, progress=spec.progress, role=ident["role"],
                              scope="trajectory", item_cap=spec.item_cap)
        # snapshots are swapped into the loaded model: only the in-process transformers decoder sees
        # them (a vLLM engine would generate from the final checkpoint's folder)
        with backends.request("transformers"):
            block = trajectory_eval.evaluate(bench, context, spec.snapshots, spec.every, output.result["metrics"],
                                             train_steps=cost.get("optimizer_steps"), rebuild=spec.snapshot_rebuild)
        cost["trajectory_seconds"] = round(time.perf_counter() - started, 3)
    weights = models.weights_record(models.resolve(spec.model_path)[0])
    document = {"identity": ident, **output.result, **({"trajectory": block} if block else {}), "cost": cost,
                "provenance": provenance.provenance({"identity": ident, "evaluator": output.result["evaluator"],
                                                     "model": str(spec.model_path),
                                                     **({"model_weights": weights} if weights else {})}),
                "status": {"state": "ok"}}
    if weights:  # the weights are not the Hub's (e.g. a dequantized GGUF): say so in every result
        document["provenance"]["model_weights"] = weights
    contract.checked_metrics(document)  # a document that would fail writes no table either
    out = Path(spec.out_dir)
    (out / "metrics.json").unlink(missing_ok=True)  # metrics.json marks completion: never pair it with a newer table
    with atomic.atomic_path(out / "per_item.parquet") as tmp:
        output.table.to_parquet(tmp, index=False)
    if block is not None:
        with atomic.atomic_path(out / contract.TRAJECTORY_FILE) as tmp:
            contract.trajectory_table(block).to_parquet(tmp, index=False)
    contract.write_metrics(out / "metrics.json", document)
    return document
