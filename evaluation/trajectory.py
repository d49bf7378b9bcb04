"""Trajectory evaluation (`evaluate_every: K`): the unlearned model at steps K, 2K, ... and the final one.

The final model is already loaded and evaluated (scope "all"); each snapshot's trainable tensors are
then copied into that same model (methods/snapshots.py), which is evaluated in scope "trajectory"
with the data, tokenizer and retain reference already in memory. The block it returns is the
`trajectory` block of metrics.json (docs/architecture.md, interface I1); the final point repeats the
top-level metrics.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from evaluation.benchmarks.base import Benchmark, EvalContext


def point(step: int, metrics: dict[str, Any], final: bool = False) -> dict[str, Any]:
    return {"step": int(step), "metrics": dict(metrics), **({"final": True} if final else {})}


def intermediate_metrics(bench: Benchmark, metrics: dict[str, Any], final_metrics: dict[str, Any]) -> dict:
    """The metrics of one intermediate point, checked to hold what I1 promises (headline + matched)."""
    required = bench.trajectory_metrics(final_metrics)
    missing = [name for name in required if name not in metrics]
    if missing:
        raise RuntimeError(f"{bench.name}: the trajectory-scope evaluation did not compute {missing}; "
                           "a benchmark must return its headline and matched metrics in every scope")
    return metrics


def evaluate(bench: Benchmark, context: EvalContext, snapshots: str | Path, every: int | None,
             final_metrics: dict[str, Any], *, train_steps: int | None,
             rebuild: Callable[[dict], dict] | None = None) -> dict[str, Any]:
    """`rebuild`: turns a snapshot's tensors into the evaluated model's (LoRA: methods.snapshots.LoraRebuild)."""
    from methods import snapshots as snapshot_files

    if every is None or int(every) < 1:
        raise ValueError(f"trajectory evaluation needs evaluate_every >= 1, got {every!r}")
    if train_steps is None:
        raise ValueError("trajectory evaluation needs the run's optimizer steps (the train result's "
                         "cost.optimizer_steps) to place the final point; pass --train-result")
    found = snapshot_files.list_snapshots(snapshots)
    expected = snapshot_files.snapshot_steps(int(every), int(train_steps))
    if [s.step for s in found] != expected:
        raise ValueError(f"{snapshots} holds snapshots at steps {[s.step for s in found]}, but evaluate_every "
                         f"{every} over {train_steps} steps writes {expected}; re-run the unlearn job")
    points = []
    for snapshot in found:
        state, extras = snapshot.load()
        snapshot_files.apply(context.model, rebuild(state) if rebuild is not None else state, extras)
        del state
        output = bench.evaluate(context)
        points.append(point(snapshot.step, intermediate_metrics(bench, output.result["metrics"], final_metrics)))
    points.append(point(train_steps, final_metrics, final=True))
    return {"every": int(every), "points": points}
