"""Disk plan of trajectory snapshots, checked when a config loads (before any job runs).

A run with `evaluate_every: K` and `max_steps: N` writes one snapshot of its trainable state at each
of the steps K, 2K, ... before N (methods/snapshots.py); all of them stay on disk until the run's
evaluation has read them (and for good with `keep_checkpoints: true`). A snapshot holds the
trainable tensors as the fp32 master weights the loop trains (4 bytes each, methods/precision.py):
every weight for `full`, fewer for subset / LoRA / GRUN. So one run needs

    trainable parameters x 4 bytes x len(range(K, N, K))

at once, e.g. `evaluate_every: 1, max_steps: 100000` on the tiny model: 787,584 x 4 x 99,999 B =
315 GB; a 7B model's single snapshot is 27 GB. The plan refuses a run whose snapshots exceed the
free space of the work folder's disk (shutil.disk_usage) or the `snapshot_disk_gb` cap, and a grid
whose kept snapshots (`keep_checkpoints`, never deleted) together exceed them, naming the run, the
numbers and the fix.

The parameter count is computed here without torch from the architecture's sizes (the table of
methods/memory_plan.py, the tiny preset, or a local folder's config.json): the full model's count,
an upper bound for every parametrization. Only when that bound does not fit is the exact trainable
count of the parametrization taken from methods.memory_plan (which builds the model on the meta
device, seconds of torch import), so the common case stays fast. Runs whose architecture is unknown
(a Hub id not in the table) or that train by `epochs` (the step count is known only at training
time) cannot be planned here and are left out.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

DEFAULT_CAP_GB = 200.0
SNAPSHOT_BYTES_PER_PARAMETER = 4  # fp32 master weights (methods/precision.py)
GB = 1e9


class SnapshotDiskError(ValueError):
    """Snapshots of a grid that cannot fit on the disk (or under the cap)."""


@dataclass(frozen=True)
class SnapshotPlan:
    label: str             # benchmark/split/model/method/seed<k>
    every: int
    steps: int
    snapshots: int         # alive at once: all of them, until the run's evaluation
    parameters: int        # trainable parameters (or the full model's, an upper bound)
    exact: bool            # parameters is the parametrization's exact trainable count
    kept: bool             # keep_checkpoints: on disk for good

    @property
    def snapshot_bytes(self) -> int:
        return self.parameters * SNAPSHOT_BYTES_PER_PARAMETER

    @property
    def total_bytes(self) -> int:
        return self.snapshot_bytes * self.snapshots


def architecture_fields(name: str) -> Optional[tuple[str, dict[str, Any]]]:
    """(model_type, config.json sizes) of a model name, or None when unknown (no torch, no download)."""
    from evaluation.models import TINY_LLAMA_CONFIG
    from methods.memory_plan import ALIASES, ARCHITECTURES

    if name in ALIASES:
        return ARCHITECTURES[ALIASES[name]]
    if name == "tiny-llama":
        return "llama", dict(vocab_size=1024, **TINY_LLAMA_CONFIG)  # as methods.memory_plan sizes it
    config = Path(name) / "config.json"
    if config.is_file():
        try:
            fields = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return fields.get("model_type", "llama"), fields
    return None


def full_parameters(model_type: str, fields: dict[str, Any]) -> Optional[int]:
    """Parameter count of a decoder from its config.json sizes: exact for Llama / Mistral layouts
    (gated MLP, RMSNorm, no biases), Phi's biases and LayerNorms added; None without the sizes."""
    try:
        h, inter = int(fields["hidden_size"]), int(fields["intermediate_size"])
        layers, vocab, heads = int(fields["num_hidden_layers"]), int(fields["vocab_size"]), int(fields["num_attention_heads"])
    except (KeyError, TypeError, ValueError):
        return None
    kv_dim = h // heads * int(fields.get("num_key_value_heads") or heads)
    tied = bool(fields.get("tie_word_embeddings", False))
    if model_type == "phi":  # q, k, v, dense with biases; fc1, fc2 with biases; one LayerNorm; biased lm_head
        layer = 2 * h * h + 2 * h * kv_dim + (2 * h + 2 * kv_dim) + 2 * h * inter + inter + h + 2 * h
        head = 0 if tied else vocab * h + vocab
        return vocab * h + layers * layer + 2 * h + head
    layer = 2 * h * h + 2 * h * kv_dim + 3 * h * inter + 2 * h  # attention, gated MLP, two RMSNorms
    return vocab * h + layers * layer + h + (0 if tied else vocab * h)


def exact_trainable(run, entry: dict[str, Any]) -> int:
    """The parametrization's trainable count (methods.memory_plan, meta device; imports torch)."""
    from methods import memory_plan
    from workflows.memory_plan_grid import job_model

    job = memory_plan.Job(job_model(entry.get("base", run.model)), run.objective, run.rectifier, run.parametrization,
                          dict(run.hyperparameters), entry.get("dtype", "float32"))
    return memory_plan.plan_job(job, memory_plan.Launch()).trainable


def plan_runs(runs: Iterable, models: dict[str, Any]) -> list[SnapshotPlan]:
    """Upper-bound plans of the runs with evaluate_every and max_steps whose architecture is known."""
    plans = []
    for run in runs:
        hyper = run.hyperparameters
        every, steps = hyper.get("evaluate_every"), hyper.get("max_steps")
        if every is None or steps is None or every < 1:
            continue
        entry = models.get(run.model, {})
        known = architecture_fields(str(entry.get("base", run.model)))
        parameters = full_parameters(*known) if known else None
        if parameters is None:
            continue
        label = f"{run.benchmark}/{run.split}/{run.model}/{run.method}/seed{run.seed}"
        plans.append(SnapshotPlan(label, int(every), int(steps), len(range(every, steps, every)), parameters,
                                  exact=trains_every_weight(run.parametrization), kept=bool(hyper.get("keep_checkpoints"))))
    return plans


def trains_every_weight(parametrization: str) -> bool:
    """Its snapshots hold the whole model, so the full-model count is exact, not a bound."""
    from methods.registry import PARAMETRIZATIONS  # reads the class from source: no torch at config load

    return bool(PARAMETRIZATIONS.class_constant(parametrization, "trains_every_weight", False))


def free_bytes(folder: str | Path) -> tuple[Path, int]:
    """Free space of the disk that holds `folder` (its nearest existing ancestor while it is not made yet)."""
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path, shutil.disk_usage(path).free


def smallest_every(plan: SnapshotPlan, limit: int) -> Optional[int]:
    """The smallest evaluate_every whose snapshots fit in `limit` bytes (None: not even one fits)."""
    allowed = limit // plan.snapshot_bytes
    if allowed < 1:
        return None
    return -(-plan.steps // (allowed + 1))


def _gb(value: float) -> str:
    return f"{value / GB:,.1f} GB" if value >= GB else f"{value / 1e6:,.2f} MB"


def check(grid, *, free: Optional[Callable[[str | Path], tuple[Path, int]]] = None,
          exact: Callable = exact_trainable) -> list[SnapshotPlan]:
    """Refuse (SnapshotDiskError) a grid whose trajectory snapshots cannot fit; return the plans."""
    config = grid.config
    models = config.get("models", {})
    work = config.get("work_dir", "work")
    cap = float(config.get("snapshot_disk_gb", DEFAULT_CAP_GB)) * GB
    disk, available = (free or free_bytes)(work)
    limit = min(cap, available)
    limit_text = (f"the {_gb(available)} free on the disk of {work}/ ({disk})" if available <= cap
                  else f"the cap snapshot_disk_gb: {cap / GB:g}")
    runs = {f"{r.benchmark}/{r.split}/{r.model}/{r.method}/seed{r.seed}": r for r in grid.runs}

    def refine(plan: SnapshotPlan) -> SnapshotPlan:  # the bound does not fit: count what really trains
        if plan.exact:
            return plan
        run = runs[plan.label]
        return SnapshotPlan(plan.label, plan.every, plan.steps, plan.snapshots,
                            exact(run, models.get(run.model, {})), True, plan.kept)

    plans = [refine(p) if p.total_bytes > limit else p for p in plan_runs(grid.runs, models)]
    for plan in plans:
        if plan.total_bytes > limit:
            every = smallest_every(plan, int(limit))
            fix = (f"use evaluate_every >= {every}" if every is not None and every < plan.steps
                   else "drop evaluate_every")
            raise SnapshotDiskError(
                f"run {plan.label}: evaluate_every {plan.every} with max_steps {plan.steps} keeps "
                f"{plan.snapshots:,} trajectory snapshots on disk until the run is evaluated, "
                f"{plan.parameters:,} trainable parameters x 4 bytes = {_gb(plan.snapshot_bytes)} each, "
                f"{_gb(plan.total_bytes)} in all, more than {limit_text}. Fix: {fix} (or fewer max_steps), "
                "free disk space, point work_dir at a larger disk, or raise snapshot_disk_gb")
    kept = [p for p in plans if p.kept]
    kept_bytes = sum(p.total_bytes for p in kept)
    if kept_bytes > limit:
        largest = ", ".join(f"{p.label} {_gb(p.total_bytes)}" for p in sorted(kept, key=lambda p: -p.total_bytes)[:3])
        raise SnapshotDiskError(
            f"{len(kept)} runs with keep_checkpoints: true keep {_gb(kept_bytes)} of trajectory snapshots for "
            f"good, more than {limit_text} (largest: {largest}). Fix: keep_checkpoints: false (snapshots are "
            "deleted once evaluated), a larger evaluate_every, free disk space or raise snapshot_disk_gb")
    return plans
