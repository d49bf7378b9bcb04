"""Predicted per-GPU memory of one unlearning job, from the architecture alone (no download).

The model is built on the meta device from a known architecture (`ARCHITECTURES`: sizes of the
paper models from their published config.json files), the parametrization is applied there, so the
trainable count is exact for full / subset / LoRA / GRUN, and the loop's own task plan
(methods.train.plan_tasks) says how many gradient buffers the rectifier and analyzers need.

Bytes per trainable parameter follow methods/precision.py and methods/buffers.py: fp32 master
weight 4, AdamW moments 8, one fp32 buffer 4 per task buffer (`none`: 1, the fused gradient;
two-task rectifiers 2; GRU 2 + its EMA 1; G-effect + 2 probes), all divided by the world size under
FSDP2. Frozen weights (LoRA/GRUN base) and the `full` frozen reference are held in the model's dtype,
sharded under FSDP2. FSDP2 also holds, unsharded, the root module's parameters (embeddings, lm_head,
final norm: the root is not resharded after forward) and up to two blocks being gathered, with
their gradients. Activations follow Korthikanti et al. (2022) for a transformer layer with fused
(SDPA) attention, ~34·b·s·h bytes per layer in 16-bit compute (68 in fp32), or 2·b·s·h per layer
plus one layer's 34·b·s·h with activation checkpointing; the logits add b·s·V·(2 + 4 + 4) (compute
dtype, the fp32 log-softmax, its gradient). Every stream forwarded with gradients keeps its graph
until the last task's backward. A fixed 2 GiB covers the CUDA context and allocator slack.

Precision terms (methods/precision.py). `master_dtype: bfloat16` keeps trainable weights in 2 bytes
(AdamW moments stay fp32) and holds bf16 gradients ("master_grads": a backward's `.grad`s before
they are added into the buffer, later the bf16 update handed to the optimizer; 2 bytes per trainable
parameter) plus the optimizer's fp32 temporaries of its largest tensor. With fp32 masters and bf16
compute on one process or DDP, autocast's bf16 casts of the matmul weights ("autocast_casts") are
saved by the graph until the micro-batch's last backward, 2 bytes per trainable matmul parameter; a
second forwarded stream reuses the cached casts, whose cast nodes then run last in that stream's
backward, so the bf16 weight gradients of every layer wait together: 2 bytes more (measured on CPU,
benchmarks/bench_memory.py: +0.96 units of 4P against 0.88 predicted for the 34 M model; with
activation checkpointing the casts die with the forward's autocast context, so one of the two
terms). Under FSDP2 FSDP casts instead (bf16 all-gathers, freed per block): no such term.
The meta-device model of an (architecture, parametrization) pair is built once per process
(`model_counts`), so a config of many runs plans in seconds. The jobs of a whole config and the
`ubench plan-memory` report are in workflows/memory_plan_grid.py (methods does not read configs).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

GIB = 1024 ** 3
RUNTIME_BYTES = 2 * GIB
DEFAULT_GPU_MEMORY_GB = 80
DEFAULT_MAX_LENGTH = 512
MEMORY_KEYS = ("batch_size", "max_length", "gradient_checkpointing", "compute_dtype", "master_dtype",
               "objective_args", "rectifier_args", "parametrization_args", "analyzers")  # hyperparameters a plan reads
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}

# config.json sizes of the paper models (model_type, fields); Zephyr-7B-beta is a Mistral-7B fine-tune
_LLAMA2_7B = ("llama", dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                            num_attention_heads=32, num_key_value_heads=32, vocab_size=32000))
_LLAMA3_8B = ("llama", dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                            num_attention_heads=32, num_key_value_heads=8, vocab_size=128256))
_MISTRAL_7B = ("mistral", dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                               num_attention_heads=32, num_key_value_heads=8, vocab_size=32000))
ARCHITECTURES: dict[str, tuple[str, dict]] = {
    "phi-1.5": ("phi", dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
                            num_attention_heads=32, vocab_size=51200, partial_rotary_factor=0.5)),
    "llama2-7b": _LLAMA2_7B,
    "llama-3.2-1b": ("llama", dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                                   num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                                   tie_word_embeddings=True)),
    "llama-3.2-3b": ("llama", dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28,
                                   num_attention_heads=24, num_key_value_heads=8, vocab_size=128256,
                                   tie_word_embeddings=True)),
    "llama-3-8b": _LLAMA3_8B,
    "mistral-7b": _MISTRAL_7B,
    "smollm2-135m": ("llama", dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                   num_attention_heads=9, num_key_value_heads=3, vocab_size=49152,
                                   tie_word_embeddings=True)),
}
# names used in configs (presets, Hub ids) → architecture
ALIASES = {
    "phi-1.5": "phi-1.5", "microsoft/phi-1_5": "phi-1.5", "locuslab/tofu_ft_phi-1.5": "phi-1.5",
    "llama2-7b-chat": "llama2-7b", "NousResearch/Llama-2-7b-chat-hf": "llama2-7b",
    "meta-llama/Llama-2-7b-hf": "llama2-7b", "meta-llama/Llama-2-7b-chat-hf": "llama2-7b",
    "locuslab/tofu_ft_llama2-7b": "llama2-7b",
    "llama-3.2-1b-instruct": "llama-3.2-1b", "meta-llama/Llama-3.2-1B-Instruct": "llama-3.2-1b",
    "llama-3.2-3b-instruct": "llama-3.2-3b", "meta-llama/Llama-3.2-3B-Instruct": "llama-3.2-3b",
    "llama-3-8b-instruct": "llama-3-8b", "meta-llama/Meta-Llama-3-8B-Instruct": "llama-3-8b",
    "llama-3.1-8b": "llama-3-8b", "llama-3.1-8b-instruct": "llama-3-8b", "meta-llama/Llama-3.1-8B": "llama-3-8b",
    "meta-llama/Llama-3.1-8B-Instruct": "llama-3-8b",
    "mistral-7b": "mistral-7b", "mistralai/Mistral-7B-v0.1": "mistral-7b",
    "zephyr-7b-beta": "mistral-7b", "HuggingFaceH4/zephyr-7b-beta": "mistral-7b",
    "smollm2-135m": "smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct": "smollm2-135m",
}


def architecture_config(name: str):
    """A transformers config for a known model name or a local folder's config.json (the pipeline's
    tiny preset is resolved to a config by workflows/memory_plan_grid.py before it gets here)."""
    from transformers import AutoConfig

    if name in ALIASES:
        model_type, fields = ARCHITECTURES[ALIASES[name]]
        return AutoConfig.for_model(model_type, **fields)
    if (Path(name) / "config.json").is_file():
        return AutoConfig.from_pretrained(name)
    raise ValueError(f"plan-memory: no architecture known for model {name!r}; known: {sorted(ALIASES)} "
                     "(add its config.json sizes to methods/memory_plan.py ARCHITECTURES, or point `base` "
                     "at a local folder with a config.json)")


def meta_model(config):
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


@dataclass
class Launch:
    gpus: int = 0
    num_processes: int = 1
    sharded: bool = False            # FSDP2 (accelerate_config with distributed_type FSDP)
    gpu_memory_gb: float = DEFAULT_GPU_MEMORY_GB

    @classmethod
    def from_launcher(cls, launcher: dict[str, Any], repo: Path) -> "Launch":
        import yaml

        sharded = False
        if launcher.get("accelerate_config"):
            path = Path(launcher["accelerate_config"])
            path = path if path.is_absolute() else repo / path
            sharded = (yaml.safe_load(path.read_text()) or {}).get("distributed_type") == "FSDP"
        return cls(int(launcher.get("gpus", 0)), int(launcher.get("num_processes", 1)), sharded,
                   float(launcher.get("gpu_memory_gb", DEFAULT_GPU_MEMORY_GB)))


@dataclass
class Job:
    model: Any                       # architecture name (see architecture_config) or a transformers config
    objective: str
    rectifier: str = "none"
    parametrization: str = "full"
    hyperparameters: dict = field(default_factory=dict)
    dtype: str = "float32"


@dataclass
class Plan:
    parts: dict[str, int]            # bytes per GPU
    parameters: int
    trainable: int
    buffers: int                     # gradient copies (task buffers + rectifier state)
    world: int
    sharded: bool

    @property
    def total(self) -> int:
        return sum(self.parts.values())


def _block_params(model) -> int:
    from methods.sharding import block_classes

    classes = block_classes(model)
    return max(sum(p.numel() for p in m.parameters()) for m in model.modules() if type(m).__name__ in classes)


@dataclass(frozen=True)
class ModelCounts:
    """Parameter counts of one architecture under one parametrization (from a meta-device build)."""
    parameters: int
    trainable: int
    trainable_matmul: int            # trainable parameters of nn.Linear modules: what autocast casts
    frozen_matmul: int
    block: int                       # parameters of the largest transformer block
    layers: int
    largest_trainable: int           # the largest trainable tensor (per-tensor optimizer temporaries)


def model_counts(config, parametrization: str, parametrization_args: dict) -> ModelCounts:
    """Counts for a transformers config (cached per architecture and parametrization: a paper config plans
    hundreds of jobs over a few architectures, and each meta build costs a noticeable fraction of a second)."""
    return _model_counts(config.to_json_string(use_diff=False), parametrization,
                         json.dumps(parametrization_args, sort_keys=True, default=str))


@functools.lru_cache(maxsize=None)
def _model_counts(config_json: str, parametrization: str, parametrization_args: str) -> ModelCounts:
    import torch
    import torch.nn as nn
    from transformers import AutoConfig

    from methods.registry import PARAMETRIZATIONS

    fields = json.loads(config_json)
    config = AutoConfig.for_model(fields.pop("model_type"), **fields)
    model = meta_model(config)
    parameters = sum(p.numel() for p in model.parameters())
    block = _block_params(model)
    # on the meta device too: GRUN's orthogonal init would otherwise run real QR factorisations of 7B-sized matrices
    with torch.device("meta"):
        prepared = PARAMETRIZATIONS.get(parametrization)(**json.loads(parametrization_args))
        model = prepared.prepare(model, needs_reference=False)  # the reference is counted in plan_job
    trainable_ids = {id(p) for _, p in prepared.trainable_parameters(model)}
    trainable = sum(p.numel() for p in model.parameters() if id(p) in trainable_ids)
    matmul = {id(p): p for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters()}
    trainable_matmul = sum(p.numel() for i, p in matmul.items() if i in trainable_ids)
    frozen_matmul = sum(p.numel() for i, p in matmul.items() if i not in trainable_ids)
    largest = max((p.numel() for p in model.parameters() if id(p) in trainable_ids), default=0)
    return ModelCounts(parameters, trainable, trainable_matmul, frozen_matmul, block, config.num_hidden_layers,
                       largest)


def plan_job(job: Job, launch: Launch) -> Plan:
    from methods.precision import check_master_dtype
    from methods.registry import OBJECTIVES, PARAMETRIZATIONS, RECTIFIERS
    from methods.train import build_analyzer, plan_tasks

    config = architecture_config(job.model) if isinstance(job.model, str) else job.model  # or a config object
    hyper = job.hyperparameters
    objective = OBJECTIVES.get(job.objective)(**hyper.get("objective_args", {}))
    rectifier = RECTIFIERS.get(job.rectifier)(**hyper.get("rectifier_args", {}))
    parametrization_args = hyper.get("parametrization_args", {})
    parametrization = PARAMETRIZATIONS.get(job.parametrization)(**parametrization_args)
    analyzers = [build_analyzer(a) for a in hyper.get("analyzers", ())]
    counts = model_counts(config, job.parametrization, parametrization_args)
    parameters, trainable = counts.parameters, counts.trainable
    plan = plan_tasks(objective, rectifier, analyzers, parametrization)
    probes = sum(len(a.probe_tasks) for a in analyzers)
    buffers = len(plan.buffers) + probes + rectifier.state_copies
    world = max(launch.num_processes, 1)
    shard = world if launch.sharded else 1
    frozen_bytes = DTYPE_BYTES[job.dtype]
    compute = hyper.get("compute_dtype", job.dtype if job.dtype != "float16" else "bfloat16")
    master = hyper.get("master_dtype", "float32")
    check_master_dtype(master, compute)  # the loop refuses bf16 masters without bf16 compute: so does the plan
    master_bytes = DTYPE_BYTES[master]
    streams = len(objective.streams) + plan.adds_retain_nll
    checkpointing = bool(hyper.get("gradient_checkpointing"))
    parts = {
        "weights": (trainable * master_bytes + (parameters - trainable) * frozen_bytes) // shard,
        "optimizer": trainable * 8 // shard,
        "gradient_buffers": trainable * 4 * buffers // shard,
        # full/subset keep a frozen copy in the loaded dtype; LoRA/GRUN switch their edits off instead
        "reference": (parameters * frozen_bytes // shard
                      if objective.needs_reference and parametrization.copies_reference else 0),
    }
    if master_bytes < 4:
        # the bf16 `.grad`s of a backward (or, later, the bf16 update handed to the optimizer), and the
        # optimizer's fp32 temporaries of one tensor (its weight, gradient and denominator)
        parts["master_grads"] = (trainable * master_bytes + counts.largest_trainable * 12) // shard
    parts["autocast_casts"] = autocast_cast_bytes(counts, compute, master, frozen_bytes, streams,
                                                  checkpointing, launch.sharded)
    if launch.sharded:  # unsharded root (embeddings, lm_head, norm) + two gathered blocks, with grads:
        # 8 bytes either way (fp32 weight + grad, or bf16 weight + bf16 grad + its fp32 reduce-scatter input)
        root = parameters - counts.layers * counts.block
        parts["fsdp_unsharded"] = (root + 2 * counts.block) * 4 * 2
    parts["activations"] = activation_bytes(config, int(hyper.get("batch_size", 4)),
                                            int(hyper.get("max_length", DEFAULT_MAX_LENGTH)),
                                            streams, DTYPE_BYTES[compute], checkpointing)
    parts["runtime"] = RUNTIME_BYTES
    return Plan(parts, parameters, trainable, buffers, world, launch.sharded)


def autocast_cast_bytes(counts: ModelCounts, compute: str, master: str, frozen_bytes: int, streams: int,
                        checkpointing: bool, sharded: bool) -> int:
    """The bf16 weight casts a step holds under autocast (module docstring): none under FSDP2 (FSDP
    casts per block) or where the weights already are in the compute dtype."""
    if sharded or DTYPE_BYTES[compute] == 4:
        return 0
    total = 0
    if DTYPE_BYTES[master] == 4:
        # the cached casts (2 B), and with a second stream its deferred bf16 weight gradients (2 B)
        total += 2 * counts.trainable_matmul * (1 if checkpointing or streams < 2 else 2)
    if frozen_bytes == 4 and not checkpointing:  # frozen fp32 weights: not cached, one cast per stream
        total += 2 * counts.frozen_matmul * streams
    return total


def activation_bytes(config, batch: int, length: int, streams: int, compute_bytes: int, checkpointing: bool) -> int:
    tokens = batch * length
    per_layer = 17 * compute_bytes * tokens * config.hidden_size  # 34·b·s·h at 2 bytes
    layers = config.num_hidden_layers
    body = (2 * tokens * config.hidden_size * layers + per_layer) if checkpointing else per_layer * layers
    logits = tokens * config.vocab_size * (compute_bytes + 4 + 4)
    return streams * (body + logits)


def fits(plan: Plan, launch: Launch) -> bool:
    return plan.total <= launch.gpu_memory_gb * 1e9


def format_row(label: str, plan: Plan, launch: Launch) -> str:
    gb = {k: v / 1e9 for k, v in plan.parts.items()}
    cells = " ".join(f"{k}={v:.1f}" for k, v in gb.items())
    verdict = "fits" if fits(plan, launch) else "DOES NOT FIT"
    mode = f"{'FSDP2' if plan.sharded else 'DDP' if plan.world > 1 else 'single'}x{plan.world}"
    return (f"{label}  [{mode}, {plan.trainable / 1e9:.3g}B/{plan.parameters / 1e9:.3g}B trainable, "
            f"{plan.buffers} grad copies]  total={plan.total / 1e9:.1f} GB of {launch.gpu_memory_gb:g} GB: "
            f"{verdict}  ({cells})")


def plan_for(model: str, objective: str, rectifier: str, hyperparameters: Optional[dict] = None,
             dtype: str = "float32", **launch) -> Plan:
    """One job's plan on a simple launch (benchmarks, tests)."""
    return plan_job(Job(model, objective, rectifier, hyperparameters=hyperparameters or {}, dtype=dtype),
                    Launch(**launch))
