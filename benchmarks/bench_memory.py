"""Measured peak memory (and step time) of a rectified GradDiff step against `none`, next to the plan.

A randomly initialised Llama (no download) trains a few optimizer steps per rectifier with short
sequences, so gradient-sized tensors dominate: weights and AdamW moments are the same for every
rectifier, the difference is the task buffers (methods/buffers.py) and rectifier state (GRU's EMA).
Figures are in units of the trainable parameters' fp32 bytes (4·P): "step" is the measured peak of
the training minus the memory held before it (weights), "extra" is step(rectifier) − step(none); the
plan's numbers come from methods/memory_plan.py for the same model and batch (every part a step
allocates: optimizer states, buffers, autocast's bf16 weight casts, bf16-master gradients,
activations). Expected: extra 1 for two-task rectifiers (PCGrad, SAGO), 2 for GRU (second buffer +
EMA), and the step within ±10% of the plan, also with `--compute-dtype bfloat16` (autocast's casts,
methods/precision.py) and `--master-dtype bfloat16` (bf16 weights, fp32 moments).

CPU (default): each rectifier runs in its own process; the peak is that of the CPU tensors alive
at once during training, from torch.profiler's tensor lifetimes (with the categories alive at the
peak), and the process's max RSS growth is recorded beside it (RSS also counts pages the allocator
keeps after frees). The category breakdown is what found the fused backward of `none` holding a
second gradient copy in autograd's input buffers (4.53 units before the per-task backward, 3.54 after). CUDA (--device cuda, used by
benchmarks/gpu_check.sh on a ~1B model): torch.cuda.max_memory_allocated after a reset, and the
median step time, whose ratio to `none` is the other GPU target (≤ 1.05 at 1B parameters).
Results: benchmarks/results/memory[-<device>].{json,md} (and $OUT when set).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from common import atomic  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
RECTIFIERS = ["none", "pcgrad", "sago", "gru"]


def llama_config(hidden: int, layers: int, intermediate: int, vocab: int, heads: int):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                       num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                       max_position_embeddings=512, tie_word_embeddings=False)


def make_streams(n: int, length: int, vocab: int) -> dict:
    g = torch.Generator().manual_seed(0)

    def example():
        ids = torch.randint(1, vocab, (length,), generator=g)
        labels = ids.clone()
        labels[:2] = -100
        return {"input_ids": ids, "attention_mask": torch.ones(length, dtype=torch.long), "labels": labels}

    return {"forget": [example() for _ in range(n)], "retain": [example() for _ in range(n)]}


def rss_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(rectifier: str, opts) -> dict:
    """One rectifier's run in this process: {peak_step_bytes, step_seconds, parameters}."""
    from transformers import LlamaForCausalLM

    from methods.train import TrainConfig, train

    torch.manual_seed(0)
    device = torch.device(opts.device)
    config = llama_config(opts.hidden, opts.layers, opts.intermediate, opts.vocab, opts.heads)
    model = LlamaForCausalLM(config).to(device)
    if opts.master_dtype == "bfloat16":  # bf16-loaded weights trained as they are
        model = model.to(torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    streams = make_streams(opts.batch_size * opts.steps, opts.length, opts.vocab)
    train_config = TrainConfig(objective="graddiff", rectifier=rectifier, lr=1e-5, max_steps=opts.steps,
                               batch_size=opts.batch_size, grad_accum=1, scheduler="constant",
                               compute_dtype=opts.compute_dtype, master_dtype=opts.master_dtype)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        before = current_rss_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        with cpu_tensor_profile(device.type == "cpu") as profiler:
            result = train(model, streams, train_config, tmp, pad_token_id=0, progress=False)
        rows = [json.loads(line) for line in (Path(tmp) / "train_log.jsonl").read_text().splitlines()]
    measured = {"rectifier": rectifier, "status": result.status, "parameters": params,
                "gradient_buffer_bytes": result.gradient_buffer_bytes}
    if device.type == "cuda":
        measured["peak_step_bytes"] = torch.cuda.max_memory_allocated(device) - before
    else:
        measured["rss_step_bytes"] = rss_bytes() - before
        measured["peak_step_bytes"], measured["peak_by_category_bytes"] = tensor_peak(profiler)
        # the profiler's per-op overhead distorts step times (most for rectifiers of many small
        # per-tensor ops): time the same steps again without it
        with tempfile.TemporaryDirectory() as tmp:
            train(model, streams, train_config, tmp, pad_token_id=0, progress=False)
            rows = [json.loads(line) for line in (Path(tmp) / "train_log.jsonl").read_text().splitlines()]
    times = [r["step_seconds"] for r in rows[1:]] or [rows[0]["step_seconds"]]
    measured["step_seconds"] = statistics.median(times)
    return measured


def cpu_tensor_profile(enabled: bool):
    """torch.profiler recording every CPU tensor allocation (a no-op context when disabled)."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    from torch.profiler import ProfilerActivity, profile

    return profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True)


def tensor_peak(profiler) -> tuple[int, dict[str, int]]:
    """Peak bytes of CPU tensors alive at once during the profiled region (relative to its start),
    and the bytes alive at that moment per category (gradient, optimizer state, autograd detail...).
    Exact where process RSS is not: the allocator keeps freed pages, and RSS includes them.
    `_memory_profile` is torch.profiler's own tensor lifetime analysis (private; no public API
    exposes it for CPU) — if a torch upgrade removes it, fall back to rss_step_bytes."""
    from torch.profiler._memory_profiler import Action

    profile = profiler._memory_profile()
    live, peak, alive, at_peak = 0, 0, {}, {}
    for _, action, key, size in profile.timeline:
        if action == Action.CREATE:
            live += size
            alive[key] = size
        elif action == Action.DESTROY:
            live -= size
            alive.pop(key, None)
        if live > peak:
            peak, at_peak = live, dict(alive)
    by_category: dict[str, int] = {}
    for (tensor, version), size in at_peak.items():
        category = profile._categories.get(tensor, version)
        name = category.name.lower() if category is not None else "unknown"
        by_category[name] = by_category.get(name, 0) + size
    return peak, by_category


def predicted(rectifier: str, opts) -> dict:
    from methods.memory_plan import Job, Launch, plan_job

    config = llama_config(opts.hidden, opts.layers, opts.intermediate, opts.vocab, opts.heads)
    plan = plan_job(Job(config, "graddiff", rectifier, hyperparameters={
        "batch_size": opts.batch_size, "max_length": opts.length, "compute_dtype": opts.compute_dtype,
        "master_dtype": opts.master_dtype}), Launch())
    # what training allocates on top of the loaded weights (the CUDA context is not a tensor)
    return {"copies": plan.buffers,
            "step_bytes": sum(v for k, v in plan.parts.items() if k not in ("weights", "runtime"))}


def run_isolated(rectifier: str, argv: list[str]) -> dict:
    """CPU: a fresh process per rectifier, so max RSS is this rectifier's own peak."""
    out = subprocess.run([sys.executable, __file__, "--one", rectifier, *argv], check=True, capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--intermediate", type=int, default=1408)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--length", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--compute-dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--master-dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rectifiers", nargs="+", default=RECTIFIERS)
    parser.add_argument("--tag", default=None, help="results file suffix (default: the device)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    opts, _ = parser.parse_known_args()
    torch.set_num_threads(opts.threads)
    if opts.one:
        print(json.dumps(measure(opts.one, opts)))
        return 0
    argv = [a for a in sys.argv[1:]]
    rows = []
    for rectifier in opts.rectifiers:
        row = run_isolated(rectifier, argv) if opts.device == "cpu" else measure(rectifier, opts)
        if opts.device == "cuda":
            torch.cuda.empty_cache()
        row.update({f"plan_{k}": v for k, v in predicted(rectifier, opts).items()})
        rows.append(row)
    base = next(r for r in rows if r["rectifier"] == "none")
    unit = 4 * base["parameters"]
    for r in rows:
        r["step_units"] = r["peak_step_bytes"] / unit
        r["extra_units"] = (r["peak_step_bytes"] - base["peak_step_bytes"]) / unit
        r["plan_step_units"] = r["plan_step_bytes"] / unit
        r["step_vs_plan"] = r["peak_step_bytes"] / r["plan_step_bytes"]
        r["plan_extra_units"] = (r["plan_step_bytes"] - base["plan_step_bytes"]) / unit
        r["step_time_ratio"] = r["step_seconds"] / base["step_seconds"]
    document = {"device": opts.device, "parameters": base["parameters"], "unit_bytes": unit,
                "settings": {k: v for k, v in vars(opts).items() if k != "one"}, "rows": rows}
    lines = [f"# Peak memory of a GradDiff step, {base['parameters'] / 1e6:.1f} M parameters, {opts.device}, "
             f"compute {opts.compute_dtype}, master weights {opts.master_dtype}",
             "", "units: fp32 bytes of the trainable parameters (4·P); step = peak during training − "
             "memory before it", "",
             "| rectifier | step (measured) | step (plan) | measured / plan | extra over none (measured) "
             "| extra (plan) | step time / none |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['rectifier']} | {r['step_units']:.2f} | {r['plan_step_units']:.2f} | "
                     f"{r['step_vs_plan']:.3f} | {r['extra_units']:.2f} | {r['plan_extra_units']:.2f} | {r['step_time_ratio']:.2f} |")
    if opts.device == "cpu":
        categories = sorted({c for r in rows for c in r["peak_by_category_bytes"]})
        lines += ["", "Alive at the peak, by torch.profiler category (same units):", "",
                  "| rectifier | " + " | ".join(categories) + " | RSS growth |",
                  "|---|" + "---|" * (len(categories) + 1)]
        for r in rows:
            parts = [f"{r['peak_by_category_bytes'].get(c, 0) / unit:.2f}" for c in categories]
            lines.append(f"| {r['rectifier']} | " + " | ".join(parts) + f" | {r['rss_step_bytes'] / unit:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    tag = opts.tag or opts.device
    for folder in [opts_out for opts_out in (RESULTS, Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
                   if opts_out is not None]:
        folder.mkdir(parents=True, exist_ok=True)
        atomic.write_json(folder / f"memory-{tag}.json", document)
        atomic.write_text(folder / f"memory-{tag}.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
