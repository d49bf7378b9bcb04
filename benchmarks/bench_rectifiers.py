"""Cost of each rectifier relative to `none` (GradDiff, same model and batch), on a tiny Llama on CPU.

Figures: median optimizer-step time ratio to `none` (target ≤ 1.15), persistent gradient-buffer
memory in fp32 copies of the trainable parameters beyond the one `.grad` copy every trainer holds
(targets: GRU ≤ 2, others ≤ 1 per extra task), and the combine step alone: our in-place fp32 GRU
projection vs the official strategy (flatten every gradient to CPU float64 NumPy, project, copy back).
Rectifiers other than `none` need 2 backward passes by construction; for GradDiff the forget and
retain losses come from separate forwards, so two backwards cost about one fused backward.
Results: benchmarks/results/rectifiers.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from common import atomic  # noqa: E402
from methods.gradspace import GradSpace  # noqa: E402
from methods.rectifiers.gru import ema_update, gru_project  # noqa: E402
from methods.train import TrainConfig, train  # noqa: E402

RECTIFIERS = [
    ("none", {}), ("gru", {}), ("gru", {"cos_clip": -0.5}), ("pcgrad", {"granularity": "tensor"}),
    ("pcgrad", {"granularity": "global"}), ("pcgrad-sym", {}), ("sago", {}), ("sago-prefer-retain", {}),
    ("blur", {}),
]
RESULTS = ROOT / "benchmarks" / "results"


def tiny_llama(hidden: int, layers: int, vocab: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                                        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                                        max_position_embeddings=256))


def make_streams(n: int, length: int, vocab: int) -> dict:
    g = torch.Generator().manual_seed(0)

    def example():
        ids = torch.randint(1, vocab, (length,), generator=g)
        labels = ids.clone()
        labels[: length // 4] = -100
        return {"input_ids": ids, "attention_mask": torch.ones(length, dtype=torch.long), "labels": labels}
    return {"forget": [example() for _ in range(n)], "retain": [example() for _ in range(n)]}


def label(rectifier: str, args: dict) -> str:
    return rectifier + "".join(f"[{k}={v}]" for k, v in args.items())


def step_times(model_args, streams, rectifier, args, steps, batch_size, out_dir):
    model = tiny_llama(*model_args)
    config = TrainConfig(objective="graddiff", rectifier=rectifier, rectifier_args=args, lr=1e-5,
                         max_steps=steps, batch_size=batch_size, seed=0)
    result = train(model, streams, config, out_dir, pad_token_id=0, progress=False)
    rows = [line for line in (Path(out_dir) / "train_log.jsonl").read_text().splitlines()]

    parsed = [json.loads(r) for r in rows][1:]  # first step warms up allocators
    return [r["step_seconds"] for r in parsed], [r["step_cpu_seconds"] for r in parsed], result


def official_gru_combine(grads_u, grads_c, m_numpy, gamma=0.8):
    """The official GRU strategy: flatten each task's gradients to CPU float64 NumPy, project, copy back."""
    g_u = np.concatenate([g.detach().cpu().numpy().astype(np.float64).ravel() for g in grads_u])
    g_c = np.concatenate([g.detach().cpu().numpy().astype(np.float64).ravel() for g in grads_c])
    m_numpy *= 1 - gamma
    m_numpy += gamma * g_c
    d = g_u @ m_numpy
    if d < 0:
        g_u = g_u - d / (m_numpy @ m_numpy) * m_numpy
    offset = 0
    out = []
    for g in grads_u:
        out.append(torch.from_numpy(g_u[offset:offset + g.numel()].reshape(g.shape)).to(g.dtype))
        offset += g.numel()
    return out


def combine_times(n_params_model, repeats: int = 7):
    model = tiny_llama(*n_params_model)
    params = list(model.parameters())
    g = torch.Generator().manual_seed(1)
    grads_u = [torch.randn(p.shape, generator=g) for p in params]
    grads_c = [torch.randn(p.shape, generator=g) for p in params]
    m_numpy = np.zeros(sum(p.numel() for p in params))
    official = []
    for _ in range(repeats):
        start = time.perf_counter()
        official_gru_combine(grads_u, grads_c, m_numpy)
        official.append(time.perf_counter() - start)
    segments, offset = [], 0
    for p in params:
        segments.append((offset, p.numel()))
        offset += p.numel()
    space = GradSpace(segments)
    flat_u = torch.cat([x.reshape(-1) for x in grads_u])
    flat_c = torch.cat([x.reshape(-1) for x in grads_c])
    m = torch.zeros_like(flat_u)
    ours = []
    for _ in range(repeats):
        work = flat_u.clone()
        start = time.perf_counter()
        ema_update(m, flat_c, 0.8)
        gru_project(work, m, space)
        ours.append(time.perf_counter() - start)
    return statistics.median(official), statistics.median(ours), offset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps per run (first one discarded)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds over all rectifiers")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    model_args = (opts.hidden, opts.layers, opts.vocab)
    streams = make_streams(opts.batch_size * opts.steps, opts.length, opts.vocab)

    times = {label(r, a): [] for r, a in RECTIFIERS}
    cpu_times = {label(r, a): [] for r, a in RECTIFIERS}
    info = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(opts.rounds):  # interleaved, so machine noise hits every rectifier alike
            for rectifier, args in RECTIFIERS:
                name = label(rectifier, args)
                seconds, cpu_seconds, result = step_times(model_args, streams, rectifier, args, opts.steps, opts.batch_size,
                                             f"{tmp}/{round_}-{name}")
                times[name] += seconds
                cpu_times[name] += cpu_seconds
                info[name] = result
    P = info["none"].trainable_parameters
    base = statistics.median(times["none"])
    base_cpu = statistics.median(cpu_times["none"])
    rows = []
    for rectifier, args in RECTIFIERS:
        name = label(rectifier, args)
        median = statistics.median(times[name])
        median_cpu = statistics.median(cpu_times[name])
        copies = info[name].gradient_buffer_bytes / (4 * P)
        rows.append({"rectifier": name, "median_step_ms": 1e3 * median, "ratio_to_none": median / base,
                     "median_step_cpu_ms": 1e3 * median_cpu, "cpu_ratio_to_none": median_cpu / base_cpu,
                     "backward_passes_per_step": info[name].backward_passes / info[name].optimizer_steps,
                     "buffer_fp32_copies": copies, "extra_fp32_copies": copies - 1,
                     "ratio_target_met": median_cpu / base_cpu <= 1.15,
                     "memory_target_met": (copies - 1) <= (2 if rectifier == "gru" else 1)})
    official, ours, n = combine_times(model_args)
    big = (512, 8, 512)
    official_big, ours_big, n_big = combine_times(big, repeats=3)
    figures = {
        "setup": {"model": f"LlamaForCausalLM hidden {opts.hidden} × {opts.layers} layers, vocab {opts.vocab}",
                  "trainable_parameters": P, "objective": "graddiff", "batch": f"{opts.batch_size} × {opts.length} tokens",
                  "steps_timed": len(times["none"]), "threads": opts.threads, "device": "cpu"},
        "rectifiers": rows,
        "gru_combine": [
            {"parameters": n, "official_cpu_float64_ms": 1e3 * official, "ours_fp32_inplace_ms": 1e3 * ours},
            {"parameters": n_big, "official_cpu_float64_ms": 1e3 * official_big, "ours_fp32_inplace_ms": 1e3 * ours_big},
        ],
    }
    opts.out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(opts.out / "rectifiers.json", figures)
    lines = [f"# Rectifier cost ({figures['setup']['model']}, {P:,} params, GradDiff, batch {figures['setup']['batch']}, CPU, {opts.threads} thread)",
             "", "Ratios of medians over interleaved rounds; CPU time (process_time) is the robust figure on a shared machine.",
             "", "| rectifier | median step wall (ms) | wall ratio to none | median step CPU (ms) | CPU ratio to none | backward/step | extra fp32 buffer copies |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['rectifier']} | {r['median_step_ms']:.1f} | {r['ratio_to_none']:.3f} | "
              f"{r['median_step_cpu_ms']:.1f} | {r['cpu_ratio_to_none']:.3f} | "
              f"{r['backward_passes_per_step']:.0f} | {r['extra_fp32_copies']:.0f} |" for r in rows]
    lines += ["", "GRU combine step alone (EMA + projection):", "",
              "| parameters | official: CPU float64 NumPy (ms) | ours: fp32 in place (ms) |", "|---|---|---|"]
    lines += [f"| {c['parameters']:,} | {c['official_cpu_float64_ms']:.1f} | {c['ours_fp32_inplace_ms']:.1f} |"
              for c in figures["gru_combine"]]
    text = "\n".join(lines) + "\n"
    atomic.write_text(opts.out / "rectifiers.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
