"""The training loop: one explicit loop for fine-tuning and unlearning (accelerate for devices/DDP).

Per optimizer step:
  1. for each micro-batch of this rank: objective → task losses; one backward per task, either all
     into one flat fp32 buffer as Σ_k w_k·∇L_k (rectifier `none`) or each into its own buffer; all
     inside `no_sync`, each loss scaled so the window's micro-batches are averaged (one backward of
     the summed losses would hold a second gradient copy in autograd's input buffers while the
     streams' contributions meet);
  2. at the boundary: all-reduce (mean) every buffer, analyzers observe, the rectifier combines;
  3. the update goes to `param.grad`; clip (max_grad_norm), optimizer step, scheduler step.
Under FSDP2 (Accelerate's FSDP launch with fsdp_version 2, or a model the caller already sharded
with `fully_shard`) buffers hold local shards: FSDP reduce-scatters and averages every backward,
so step 2 skips the loop's all-reduce and the rectifiers' dot products are all-reduced partial sums.
Precision (methods/precision.py): fp32 master weights (or bf16 ones with `master_dtype: bfloat16`),
fp32 gradients, buffers and AdamW states on every launcher; forwards under autocast in `compute_dtype`
(the model's configured dtype); under FSDP2 FSDP's policy all-gathers in the compute dtype.
Memory: a rectifier's extra memory over `none` is its extra task buffers only: fp32 parameters
backward straight into buffer views (no transient `.grad`), the update is handed to the optimizer as
views of the buffer it was written into, and data-parallel runs are not wrapped in DDP (the loop
all-reduces the buffers itself, so DDP's gradient buckets, a full gradient copy, are never allocated).
`gradient_checkpointing` recomputes activations in the backward; under FSDP2 the frozen reference is
sharded too (methods/sharding.py).
Writes train_log.jsonl (one line per optimizer step), train_status.json and checkpoints to out_dir;
with `snapshot_every=K`, the trainable state at steps K, 2K, ... before the last one goes to
out_dir/snapshots/step-NNNNNNN (methods/snapshots.py) for trajectory evaluation.
`model` is always the starting model (the frozen reference is copied from it); `resume_from` then
loads the trainable state, optimizer, scheduler, rectifier state and RNG from a checkpoint folder.
In code: `setup` builds a `TrainingRun` (parts, launch, placed model, buffers, optimizer, schedule);
`optimizer_step` is steps 1-3 (`accumulate`, the reduction, `combine`, clip and step); `train` loops
over it, logging, and `save_progress` writes snapshots and checkpoints between steps.
"""
from __future__ import annotations

import dataclasses
import math
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
import torch.distributed as dist
from accelerate import Accelerator
from accelerate.utils import DistributedType, set_seed
from tqdm.auto import tqdm
from transformers import get_scheduler

from common import atomic
from methods import checkpoint, precision, sharding, snapshots, tokens
from methods.buffers import TaskBuffers
from methods.data import Schedule, check_examples, gather
from methods.gradspace import GradSpace, cosine
from methods.rectifiers.base import TaskGradients
from methods.registry import ANALYZERS, OBJECTIVES, PARAMETRIZATIONS, RECTIFIERS

SCHEDULERS = {"linear": "linear", "constant": "constant_with_warmup", "cosine": "cosine"}
RETAIN_NLL = "retain_nll"  # task added when a rectifier needs a retain gradient the objective lacks
FUSED = "update"


@dataclass
class TrainConfig:
    objective: str
    rectifier: str = "none"
    parametrization: str = "full"
    objective_args: dict = field(default_factory=dict)
    rectifier_args: dict = field(default_factory=dict)
    parametrization_args: dict = field(default_factory=dict)
    lr: float = 1e-5
    epochs: int = 1
    max_steps: Optional[int] = None   # overrides epochs when set (data cycles through epochs)
    batch_size: int = 4               # per device micro-batch
    grad_accum: int = 1
    weight_decay: float = 0.0
    warmup_steps: int = 0
    warmup_ratio: float = 0.0         # used when warmup_steps is 0
    scheduler: str = "linear"         # linear | constant | cosine
    max_grad_norm: Optional[float] = 1.0  # None: no clipping
    seed: int = 0
    checkpoint_every: Optional[int] = None
    optimizer: str = "adamw"
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    compute_dtype: str = "float32"    # forward dtype under autocast (the model's `dtype`)
    master_dtype: str = "float32"     # trained weights; bfloat16: GRU's / SAGO-WMDP's regime (fp32 AdamW moments)
    gradient_checkpointing: bool = False  # recompute activations in the backward (HF models)

    def validate(self) -> None:
        problems = []
        if self.scheduler not in SCHEDULERS:
            problems.append(f"scheduler must be one of {sorted(SCHEDULERS)}, got {self.scheduler!r}")
        if self.optimizer != "adamw":
            problems.append(f"optimizer must be 'adamw', got {self.optimizer!r}")
        for name in ("batch_size", "grad_accum"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1")
        if self.max_steps is None and self.epochs < 1:
            problems.append("epochs must be >= 1 (or set max_steps)")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append("max_steps must be >= 1 or None")
        if self.warmup_steps and self.warmup_ratio:
            problems.append("set warmup_steps or warmup_ratio, not both")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            problems.append("checkpoint_every must be >= 1 or None")
        try:
            precision.check_compute_dtype(self.compute_dtype)
            precision.check_master_dtype(self.master_dtype, self.compute_dtype)
        except ValueError as error:
            problems.append(str(error))
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))


@dataclass
class TrainResult:
    status: str                      # "ok" | "diverged"
    diverged_step: Optional[int]
    reason: Optional[str]
    optimizer_steps: int
    backward_passes: int
    train_seconds: float
    peak_memory_bytes: int
    trainable_parameters: int
    gradient_buffer_bytes: int = 0   # persistent flat buffers (+ rectifier state such as GRU's EMA)
    precision: dict = field(default_factory=dict)  # what weights/compute/reference were held in


@dataclass
class TaskPlan:
    """Which losses get their own backward, and which streams that needs."""
    weights: dict[str, float]        # objective task weights
    buffers: list[str]               # buffer per backward: [FUSED] or one per task
    streams: list[str]
    retain: Optional[str]
    retain_weight: float
    constraint: Optional[str]

    @property
    def separate(self) -> bool:
        return self.buffers != [FUSED]

    @property
    def adds_retain_nll(self) -> bool:
        return RETAIN_NLL in self.buffers


def plan_tasks(objective, rectifier, analyzers, parametrization=None) -> TaskPlan:
    # a parametrization may add tasks of its own (GRUN's gate BCE); they are objective tasks like the rest
    weights = {**objective.weights(), **(parametrization.extra_weights() if parametrization is not None else {})}
    separate = rectifier.separate_gradients or any(a.needs_separate_gradients for a in analyzers)
    retain, retain_weight, constraint = None, 1.0, None
    if rectifier.needs_retain:
        if "retain" in weights:
            retain, retain_weight = "retain", weights["retain"]
        else:
            retain, retain_weight = RETAIN_NLL, float(rectifier.args["retain_weight"])
    if rectifier.needs_retain_nll:
        constraint = "retain" if objective.retain_is_nll else RETAIN_NLL
    buffers = list(weights) if separate else [FUSED]
    if RETAIN_NLL in (retain, constraint) and rectifier.needs_retain:
        buffers.append(RETAIN_NLL)
    streams = list(objective.streams)
    if RETAIN_NLL in buffers and "retain" not in streams:
        streams.append("retain")
    extra_streams = list(getattr(parametrization, "extra_streams", ())) + [
        s for a in analyzers for s in a.probe_streams]
    streams += [s for s in dict.fromkeys(extra_streams) if s not in streams]
    return TaskPlan(weights, buffers, streams, retain, retain_weight, constraint)


def check_streams(plan: TaskPlan, streams: dict, config: TrainConfig) -> None:
    """Fail before training when a needed stream is missing or empty, saying how to fix it."""
    for name in plan.streams:
        if not streams.get(name):
            why = (f"rectifier {config.rectifier!r} needs a retain gradient and objective "
                   f"{config.objective!r} has no retain term, so the loop adds NLL on stream 'retain'"
                   if name == "retain" and name not in OBJECTIVES.get(config.objective).streams
                   else f"objective {config.objective!r} reads streams {plan.streams}")
            raise ValueError(f"stream {name!r} is missing or empty: {why}. Pass streams[{name!r}] "
                             "(methods.data.build_streams builds it from QA pairs) or choose another "
                             "objective/rectifier.")
        check_examples(name, streams[name])


def decay_groups(model, named_params, weight_decay: float) -> list[dict]:
    """HF Trainer convention: no weight decay on biases and normalisation weights."""
    norm_params = {id(p) for m in model.modules() if "Norm" in type(m).__name__ for p in m.parameters(recurse=False)}
    decay, no_decay = [], []
    for name, p in named_params:
        (no_decay if "bias" in name or id(p) in norm_params else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def peak_memory_bytes(device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def _all_reduce_mean(tensor: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor.div_(world)
    return tensor


SUPPORTED_DISTRIBUTED = {DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU}


def check_distributed_type(kind: DistributedType, fsdp_version: Optional[int] = None) -> None:
    """One process, DDP (tested: 2 ranks = 1 rank) and FSDP2 (DTensor shards, tested: 2 sharded
    ranks = 1 rank) train correctly. FSDP1's flat parameters and DeepSpeed's ZeRO partitions hide
    the per-parameter shards the buffers need, so refuse them rather than train wrongly."""
    if kind == DistributedType.FSDP and fsdp_version == 2:
        return
    if kind not in SUPPORTED_DISTRIBUTED:
        what = f"FSDP version {fsdp_version}" if kind == DistributedType.FSDP else kind.value
        raise NotImplementedError(
            f"the training loop supports single-process, DDP and FSDP2 launches, not {what}: launch with "
            "config/accelerate/ddp.yaml or config/accelerate/fsdp.yaml (fsdp_version: 2) "
            "(launcher.accelerate_config), or a LoRA/GRUN parametrization to fit a 7B model per GPU")


def shard_group(params: list[torch.Tensor]):
    """The process group FSDP2 shards over (a 1-D mesh, Shard(0)), for global dot products."""
    meshes = {p.device_mesh for p in params}
    if len(meshes) != 1 or next(iter(meshes)).ndim != 1:
        raise NotImplementedError("sharded training supports one 1-D FSDP2 mesh (fully_shard over all "
                                  "ranks), not HSDP or several meshes")
    return next(iter(meshes)).get_group()


def build_analyzer(spec):
    """An analyzer from a name (`"geffect"`), a config mapping (`{"name": "geffect", "every": 5}`)
    or an already built instance."""
    if isinstance(spec, str):
        return ANALYZERS.get(spec)()
    if isinstance(spec, dict):
        if "name" not in spec:
            raise ValueError(f"analyzer settings {spec!r} lack `name` (e.g. {{name: geffect, every: 5}})")
        return ANALYZERS.get(spec["name"])(**{k: v for k, v in spec.items() if k != "name"})
    return spec


def broadcast_from_main(model, world: int) -> None:
    """What DDP does when it wraps a model: every rank starts from rank 0's parameters and buffers
    (the loop does not wrap in DDP, see the module docstring)."""
    if world > 1:
        for tensor in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(tensor.data, src=0)


def check_parametrization_launch(name: str, sharded: bool) -> None:
    """A parametrization that saves only unsharded state (LoRA, GRUN: not `fsdp_savable`): refuse
    FSDP before training rather than after it."""
    if sharded and not PARAMETRIZATIONS.get(name).fsdp_savable:
        raise NotImplementedError(
            f"parametrization {name!r} cannot be saved after FSDP2 training; it trains few parameters over a "
            "frozen base, so launch it single-process or with DDP (config/accelerate/ddp.yaml)")


def _is_finite(value: Optional[float]) -> bool:
    return value is not None and math.isfinite(value)


@dataclass
class TrainingRun:
    """What setup builds and every optimizer step reads, plus the progress a checkpoint saves."""
    config: TrainConfig
    streams: dict
    pad_token_id: int
    out_dir: Path
    objective: Any
    rectifier: Any
    parametrization: Any
    analyzers: list
    plan: TaskPlan
    accelerator: Accelerator
    world: int
    rank: int
    device: torch.device
    sharded: bool
    presharded: bool
    model: torch.nn.Module                # what forwards (FSDP-wrapped when Accelerate sharded it)
    bare: torch.nn.Module                 # the unwrapped model: parameters, saving
    named: list                           # (name, parameter) of what trains
    frozen_reference: Optional[torch.nn.Module]
    reference: Optional[Callable]         # batch -> reference logits, when the objective needs them
    buffers: TaskBuffers
    space: GradSpace
    layout: dict
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    scheduler: Any
    total_steps: int
    loss_names: list
    snapshot_every: Optional[int] = None
    log_rows: list = field(default_factory=list)
    start_step: int = 0
    backward_passes: int = 0
    train_seconds: float = 0.0

    def forward_context(self):
        """The forwards (trained model and frozen reference alike) run under the precision's autocast."""
        return precision.autocast(self.device, self.config.compute_dtype)


def build_parts(config: TrainConfig, analyzers: Sequence):
    """Objective, rectifier, parametrization, analyzers, the task plan and the probe tasks."""
    config.validate()
    objective = OBJECTIVES.get(config.objective)(**config.objective_args)
    rectifier = RECTIFIERS.get(config.rectifier)(**config.rectifier_args)
    parametrization = PARAMETRIZATIONS.get(config.parametrization)(**config.parametrization_args)
    analyzers = [build_analyzer(a) for a in analyzers]
    plan = plan_tasks(objective, rectifier, analyzers, parametrization)
    probes = [task for analyzer in analyzers for task in analyzer.probe_tasks]
    return objective, rectifier, parametrization, analyzers, plan, probes


def start_accelerator(config: TrainConfig, model, objective, shard: Optional[Callable], resume_from,
                      snapshot_every: Optional[int]) -> tuple[Accelerator, bool, bool]:
    """(accelerator, sharded, presharded), refusing launches the loop cannot train or save."""
    # cpu=True is how accelerate recognises a multi-process CPU (gloo) launch; precision is the loop's
    # own (methods/precision.py), so Accelerate's mixed precision stays off whatever the launcher says
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision="no")
    fsdp_plugin = getattr(accelerator.state, "fsdp_plugin", None)
    check_distributed_type(accelerator.distributed_type, getattr(fsdp_plugin, "fsdp_version", None))
    if fsdp_plugin is not None:  # all-gathers in the compute dtype, fp32 reduce-scatters (precision.fsdp_policy)
        fsdp_plugin.mixed_precision_policy = precision.fsdp_policy(config.compute_dtype)
    # Accelerate shards with FSDP only on accelerators; a caller may pass a model it sharded itself
    presharded = shard is not None or checkpoint.is_sharded(model)
    sharded = presharded or accelerator.distributed_type == DistributedType.FSDP
    if presharded and shard is None and objective.needs_reference:
        raise ValueError(f"objective {config.objective!r} needs a frozen reference copy, and an FSDP-sharded "
                         "model cannot be deep-copied: pass the unsharded model with train(..., shard=fn) "
                         "so the reference is copied before fn shards it")
    check_parametrization_launch(config.parametrization, sharded)
    if snapshot_every is not None:
        if int(snapshot_every) < 1:
            raise ValueError(f"snapshot_every must be >= 1, got {snapshot_every}")
        snapshots.check_supported(config.parametrization_args)
    if sharded and (config.checkpoint_every or resume_from is not None):
        raise NotImplementedError("checkpoint_every / resume_from are not supported under FSDP sharding yet "
                                  "(they save unsharded state); drop them or launch with DDP (ddp.yaml)")
    return accelerator, sharded, presharded


def enable_gradient_checkpointing(model) -> None:
    # non-reentrant: recomputes correctly for each of the several backwards of one graph
    if hasattr(model, "activation_checkpointing_enable"):  # transformers' newer name
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    elif hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        raise ValueError(f"gradient_checkpointing: {type(model).__name__} is not a Hugging Face model "
                         "(no gradient_checkpointing_enable); set gradient_checkpointing: false")


def place_model(model, parametrization, objective, config: TrainConfig, accelerator: Accelerator,
                shard: Optional[Callable], sharded: bool, presharded: bool, world: int):
    """The parametrized model on its device(s): (model, bare model, trained parameters, frozen reference)."""
    device = accelerator.device
    model = parametrization.prepare(model, needs_reference=objective.needs_reference)
    frozen_reference = getattr(parametrization, "reference", None)
    if frozen_reference is not None:
        frozen_reference.to(device)
    if not presharded or shard is not None:  # a pre-sharded model's parameters are DTensors already
        precision.upcast_trainable(parametrization.trainable_parameters(model), config.master_dtype)
    if shard is not None:
        shard(model)
        if frozen_reference is not None:
            shard(frozen_reference)
    if sharded and not presharded:  # Accelerate's FSDP2 shards the trained model
        model = accelerator.prepare(model)
    elif not sharded:  # no DDP wrapper: the loop all-reduces its own buffers (no bucket copies)
        model.to(device)
        broadcast_from_main(model, world)
    model.train()
    bare = accelerator.unwrap_model(model)
    named = parametrization.trainable_parameters(bare)  # FSDP replaces the parameters: take them after
    if sharded and frozen_reference is not None and not checkpoint.is_sharded(frozen_reference):
        sharding.shard_frozen(frozen_reference, next(iter(named))[1].device_mesh)
    return model, bare, named, frozen_reference


def setup(model, streams: dict, config: TrainConfig, out_dir, pad_token_id: int, *, analyzers: Sequence = (),
          resume_from=None, shard: Optional[Callable] = None, snapshot_every: Optional[int] = None) -> TrainingRun:
    """Build the parts and check the combination before anything trains; place the model; allocate
    the task buffers, optimizer and schedule; resume from a checkpoint when asked."""
    objective, rectifier, parametrization, analyzers, plan, probes = build_parts(config, analyzers)
    check_streams(plan, streams, config)
    out_dir = Path(out_dir)
    accelerator, sharded, presharded = start_accelerator(config, model, objective, shard, resume_from, snapshot_every)
    world, rank, device = accelerator.num_processes, accelerator.process_index, accelerator.device
    set_seed(config.seed)  # before the parametrization draws its initial weights (LoRA, GRUN)
    if config.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    model, bare, named, frozen_reference = place_model(model, parametrization, objective, config, accelerator,
                                                       shard, sharded, presharded, world)
    reference = (lambda batch: parametrization.reference_logits(bare, batch)) if objective.needs_reference else None

    buffers = TaskBuffers(named, plan.buffers + probes, device)
    if sharded and not buffers.sharded:
        raise RuntimeError("FSDP launch but the trainable parameters are not DTensors; use fsdp_version: 2")
    space = GradSpace(buffers.segments, shard_group=shard_group([p for _, p in named]) if sharded else None)
    layout = {name: slice(o, o + n) for name, (o, n) in zip(buffers.names, buffers.segments)}
    optimizer = precision.optimizer(decay_groups(bare, named, config.weight_decay), config.master_dtype,
                                    lr=config.lr, betas=tuple(config.adam_betas), eps=config.adam_eps)
    schedule = Schedule({name: len(streams[name]) for name in plan.streams}, plan.streams[0],
                        tuple(s for s in objective.aligned_streams if s in plan.streams),
                        config.batch_size, config.grad_accum, world, config.seed,
                        redrawn=tuple(s for s in plan.streams if getattr(streams[s], "redrawn_per_epoch", False)))
    total_steps = config.max_steps if config.max_steps is not None else config.epochs * schedule.steps_per_epoch
    warmup = config.warmup_steps or math.ceil(config.warmup_ratio * total_steps)
    scheduler = get_scheduler(SCHEDULERS[config.scheduler], optimizer, num_warmup_steps=warmup,
                              num_training_steps=total_steps)
    loss_names = list(plan.weights) + ([RETAIN_NLL] if plan.adds_retain_nll else [])
    run = TrainingRun(config, streams, pad_token_id, out_dir, objective, rectifier, parametrization, analyzers,
                      plan, accelerator, world, rank, device, sharded, presharded, model, bare, named,
                      frozen_reference, reference, buffers, space, layout, optimizer, schedule, scheduler,
                      total_steps, loss_names, snapshot_every)
    for analyzer in analyzers:
        analyzer.start(dict(plan.weights), out_dir)
    if resume_from is not None:
        resume(run, resume_from)
    return run


def resume(run: TrainingRun, resume_from) -> None:
    """Trainable state, optimizer, scheduler, rectifier and objective state, RNG and progress."""
    state = checkpoint.load(resume_from)
    changed = {k for k, v in dataclasses.asdict(run.config).items()
               if k != "checkpoint_every" and state["config"].get(k) != v}
    if changed:
        raise ValueError(f"resume_from={resume_from} was written with a different config ({sorted(changed)}); "
                         "resume with the same settings or start a fresh run")
    run.parametrization.load_trainable_state(run.bare, state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.rectifier.load_state_dict(state["rectifier"])
    run.objective.load_state_dict(state.get("objective", {}))
    checkpoint.restore_rng(state["rng"])
    run.log_rows, run.start_step = state["log"], state["step"]
    run.backward_passes, run.train_seconds = state["backward_passes"], state["train_seconds"]


def finish(run: TrainingRun, status: str, diverged_step=None, reason=None) -> TrainResult:
    """The result (backward passes summed over ranks); the main process writes the log and status."""
    passes = torch.tensor([float(run.backward_passes)], device=run.device)
    _all_reduce_mean(passes, run.world)
    config = run.config
    result = TrainResult(status, diverged_step, reason, optimizer_steps=len(run.log_rows),
                         backward_passes=int(round(passes.item() * run.world)), train_seconds=run.train_seconds,
                         peak_memory_bytes=peak_memory_bytes(run.device),
                         trainable_parameters=sum(p.numel() for _, p in run.named),
                         gradient_buffer_bytes=run.buffers.nbytes() + run.rectifier.state_nbytes(),
                         precision=precision.describe(config.compute_dtype, run.bare, run.named, run.frozen_reference,
                                                      config.master_dtype, run.sharded and not run.presharded))
    if run.accelerator.is_main_process:
        atomic.write_jsonl(run.out_dir / "train_log.jsonl", run.log_rows)
        atomic.write_json(run.out_dir / "train_status.json", dataclasses.asdict(result))
        for analyzer in run.analyzers:
            analyzer.finish(run.out_dir)
    for _, p in run.named:
        p.grad = None
    return result


def accumulate(run: TrainingRun, step: int) -> torch.Tensor:
    """Forward and backward of this rank's micro-batches into the task buffers, no communication;
    the window's losses, summed with each micro-batch's scale (float64, one per loss name)."""
    plan, buffers, schedule = run.plan, run.buffers, run.schedule
    micro_batches, n_micro = schedule.for_rank(step, run.rank)
    run.objective.begin_step(step, step // schedule.steps_per_epoch)
    # after the mean all-reduce (DDP) or FSDP's mean reduce-scatter: the mean over the window's micro-batches
    scales = [run.world / n_micro] * len(micro_batches)
    if run.sharded:  # every rank joins every FSDP collective: pad a partial window with zero-weight repeats
        idle = math.ceil(n_micro / run.world) - len(micro_batches)
        micro_batches = micro_batches + schedule.micro_batches(step)[:1] * idle
        scales += [0.0] * idle
    loss_sums = torch.zeros(len(run.loss_names), dtype=torch.float64, device=run.device)
    for micro, scale in zip(micro_batches, scales):
        counted = int(scale > 0)
        batches = gather(run.streams, micro, run.pad_token_id, run.device)
        with run.forward_context():
            losses = run.parametrization.task_losses(run.objective, run.model, batches, run.reference, step + 1)
            if plan.adds_retain_nll:
                retain = batches["retain"]
                losses[RETAIN_NLL] = tokens.mean_nll(tokens.logits_of(run.model, retain), retain["labels"])
        loss_sums += torch.stack([losses[k].detach().double() for k in run.loss_names]) * scale
        if not plan.separate:
            # one buffer, one backward per weighted task: a single backward of the summed losses
            # holds each parameter's first gradient in autograd's input buffer until the other
            # stream's arrives (~1 extra gradient copy, measured in benchmarks/bench_memory.py)
            tasks = list(plan.weights)
            for i, task in enumerate(tasks):
                buffers.backward(FUSED, plan.weights[task] * losses[task] * scale,
                                 retain_graph=i < len(tasks) - 1)
                run.backward_passes += counted
        else:
            for i, task in enumerate(plan.buffers):
                buffers.backward(task, losses[task] * scale, retain_graph=i < len(plan.buffers) - 1)
                run.backward_passes += counted
        del losses
        run.objective.end_micro_batch(counted=bool(counted))
        for analyzer in run.analyzers:  # probe gradients (G-effect risks): read-only, never in the update
            with run.forward_context():
                probes_now = analyzer.probe_losses(step + 1, run.model, batches)
            for task, probe in probes_now.items():
                buffers.backward(task, probe * scale)
                run.backward_passes += counted
    return loss_sums


def combine(run: TrainingRun, step: int, row: dict) -> tuple[torch.Tensor, float, dict]:
    """(update, its norm, geometry): analyzers observe the task gradients and the rectifier combines
    them; fills `row` with what they report. The task norms and cos(forget, retain) come from the
    rectifier's Gram matrix (one pass over the buffers, which the rule reuses); the update's norm and
    cosines from what the rule reports, else from one more pass over the update."""
    plan, buffers, space = run.plan, run.buffers, run.space
    geometry = {"grad_norm": None, "cos_forget_retain": None, "cos_update_retain": None,
                "cos_update_forget": None, "intervened": None}
    if not plan.separate:
        update = buffers.buffers[FUSED]
        return update, space.norm(update), geometry
    task_grads = TaskGradients(buffers.buffers, plan.weights, plan.retain, plan.retain_weight, plan.constraint)
    if not run.rectifier.fuses_gram:
        run.rectifier.gram(task_grads, space)
    for analyzer in run.analyzers:
        row.update(analyzer.observe(step + 1, buffers.buffers, run.layout, space))
    combined = run.rectifier.combine(task_grads, space)
    gram = task_grads.gram
    if gram is None:
        raise RuntimeError(f"rectifier {run.config.rectifier!r} declares fuses_gram but left tasks.gram unset")
    norms = {t: gram.norm(t) for t in plan.buffers}
    geometry["grad_norm"] = norms
    forget = next(iter(plan.weights))
    retain_side = task_grads.retain_side
    if retain_side and retain_side != forget:
        geometry["cos_forget_retain"] = cosine(gram.dot(forget, retain_side), norms[forget], norms[retain_side])
    update = combined.update
    exact = combined.update_sq_norm is not None
    update_norm = max(combined.update_sq_norm, 0.0) ** 0.5 if exact else space.norm(update)
    geometry["intervened"] = combined.intervened
    row.update(combined.extra)  # e.g. GRU's cos_update_constraint (update vs the EMA)
    if combined.dot_update_forget is not None:
        geometry["cos_update_forget"] = cosine(combined.dot_update_forget, update_norm, norms[forget])
    if retain_side:
        dot = combined.dot_update_retain
        if dot is None:
            dot = space.dot(update, buffers.buffers[retain_side])
        geometry["cos_update_retain"] = cosine(dot, update_norm, norms[retain_side])
    return update, update_norm, geometry


def optimizer_step(run: TrainingRun, step: int) -> tuple[dict, Optional[str]]:
    """One optimizer step: micro-batches into the task buffers, reduce, rectify, clip, step.
    Returns the step's log row and, when the step diverged (then nothing was updated), why."""
    run.buffers.zero()
    # ---- 1. forward and backward per micro-batch, no DDP communication
    loss_sums = accumulate(run, step)

    # ---- 2. reduce at the optimizer boundary, observe, combine
    if not run.sharded:  # FSDP already averaged the shards over ranks
        for flat in run.buffers.buffers.values():
            _all_reduce_mean(flat, run.world)
    loss_values = _all_reduce_mean(loss_sums, run.world).tolist()
    row = {"step": step + 1, "epoch": step // run.schedule.steps_per_epoch,
           "losses": dict(zip(run.loss_names, loss_values)),
           "lr": run.scheduler.get_last_lr()[0]}
    bad_loss = [k for k, v in row["losses"].items() if not math.isfinite(v)]
    if bad_loss:
        return row, f"non-finite loss {bad_loss} at optimizer step {step + 1}"
    update, update_norm, geometry = combine(run, step, row)
    row.update(geometry, update_norm=update_norm)
    if not _is_finite(update_norm) or (geometry["grad_norm"] and not all(map(_is_finite, geometry["grad_norm"].values()))):
        return row, f"non-finite gradient at optimizer step {step + 1}"

    # ---- 3. clip (torch's clip_grad_norm_ rule, on the global norm), step
    if run.config.max_grad_norm is not None:
        clip = run.config.max_grad_norm / (update_norm + 1e-6)
        if clip < 1.0:
            update.mul_(clip)
    run.buffers.set_param_grads(update)
    run.optimizer.step()
    run.scheduler.step()
    for _, p in run.named:
        p.grad = None
    return row, None


def save_progress(run: TrainingRun, done: int) -> None:
    """The trajectory snapshot and the checkpoint due after `done` optimizer steps (none at the last)."""
    config, accelerator = run.config, run.accelerator
    if run.snapshot_every and done % run.snapshot_every == 0 and done < run.total_steps:
        state = snapshots.gathered_state(run.named)  # a collective under FSDP2: every rank joins
        if accelerator.is_main_process:
            snapshots.save(run.out_dir / "snapshots", done, state, snapshots.extras_of(run.bare))
        del state
        accelerator.wait_for_everyone()
    if config.checkpoint_every and done % config.checkpoint_every == 0 and done < run.total_steps:
        if accelerator.is_main_process:
            checkpoint.save(checkpoint.checkpoint_dir(run.out_dir, done), {
                "step": done, "config": dataclasses.asdict(config),
                "model": run.parametrization.trainable_state(run.bare), "optimizer": run.optimizer.state_dict(),
                "scheduler": run.scheduler.state_dict(), "rectifier": run.rectifier.state_dict(),
                "objective": run.objective.state_dict(),
                "rng": checkpoint.rng_state(), "log": run.log_rows,
                "backward_passes": run.backward_passes, "train_seconds": run.train_seconds})
            atomic.write_jsonl(run.out_dir / "train_log.jsonl", run.log_rows)
        accelerator.wait_for_everyone()


def train(model, streams: dict[str, list[dict[str, torch.Tensor]]], config: TrainConfig, out_dir,
          pad_token_id: int, *, analyzers: Sequence = (), resume_from=None, progress: bool = True,
          shard: Optional[Callable] = None, snapshot_every: Optional[int] = None) -> TrainResult:
    """`snapshot_every`: write the trainable state every that many optimizer steps (not at the last
    one) to out_dir/snapshots, for trajectory evaluation (`evaluate_every`); under FSDP2 the shards
    are all-gathered first. `shard(model)`: applies FSDP2 `fully_shard` in place, after the parametrization (and its frozen
    reference copy) is prepared, where Accelerate cannot (it shards only on accelerators). A model
    already sharded by the caller also trains, unless the objective needs a reference copy."""
    run = setup(model, streams, config, out_dir, pad_token_id, analyzers=analyzers, resume_from=resume_from,
                shard=shard, snapshot_every=snapshot_every)
    bar = tqdm(total=run.total_steps, initial=run.start_step,
               disable=not progress or not run.accelerator.is_main_process,
               desc=f"{config.objective}+{config.rectifier}")
    for step in range(run.start_step, run.total_steps):
        started, started_cpu = time.perf_counter(), time.process_time()
        row, diverged = optimizer_step(run, step)
        if diverged is not None:
            bar.close()
            return finish(run, "diverged", step + 1, diverged)
        step_seconds = time.perf_counter() - started
        run.train_seconds += step_seconds
        row["step_seconds"] = step_seconds
        if run.objective.log_state():  # rank 0's value: per-rank state (PDU's dual variable) is not reduced
            row["objective_state"] = run.objective.log_state()
        row["step_cpu_seconds"] = time.process_time() - started_cpu  # all threads; robust to a busy machine
        run.log_rows.append(row)
        bar.update(1)
        bar.set_postfix({k: f"{v:.3g}" for k, v in row["losses"].items()})
        save_progress(run, step + 1)
    bar.close()
    return finish(run, "ok")
