"""GRUN (arXiv 2502.17823): gated low-rank representation edits on a frozen base model.

At each chosen block ℓ the residual stream after the block is edited at one position (the last
prompt token): Φ(h) = h + σ(s(h))·Rᵀ(W·h + b − R·h), R ∈ ℝ^{r×d} with orthonormal rows. Only R, (W, b)
and the gate s train; the base stays frozen, and the same base with the edits switched off is the
reference model (NPO, KL), so no second copy is held. The gate loss BCE(σ(s(h)), 1 on forget prompts,
0 on retain prompts)·λ_g is an extra task `gate`; warm-up w(t) scales the objective's tasks.

The edits are written as forward hooks (pyreft 0.1.0 pins transformers 4.45.1, which this suite
cannot use). Generated tokens see the edit only through the KV cache of the prompt, as in the paper.

Where the prompt ends: in training, from the labels (first labelled token − 1). For plain
`model(...)` / `model.generate(...)` calls (the evaluation harness), from the prompt format's closing
tokens, learned during training as the longest common suffix of the training prompts (first
occurrence in each row), else the last attended token (a generation prompt). `at_positions(...)`
sets positions explicitly.

Saving writes `grun_config.json` (base model reference + edit settings) and `grun_edits.safetensors`;
`load_grun_model(path)` returns the base model with the trained edits attached.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch.nn.utils.parametrizations import orthogonal

from common import atomic
from methods import tokens
from methods.parametrizations.base import (EDITS_NEED_ATTENTION_MASK, EDITS_PROMPT_POSITIONS, Parametrization,
                                          SnapshotExtras)
from methods.registry import PARAMETRIZATIONS

CONFIG_FILE = "grun_config.json"
EDITS_FILE = "grun_edits.safetensors"
GATES = ("linear", "mlp_3")
MAX_SUFFIX = 16  # prompt-closing tokens remembered for locating the prompt end at evaluation


def make_gate(kind: str, hidden: int) -> nn.Module:
    """s(h): GRUN's `linear` (GatedLoreftIntervention_Linear) or `mlp_3` (d → 256 → 64 → 1) gate."""
    if kind == "linear":
        return nn.Linear(hidden, 1)
    if kind == "mlp_3":
        return nn.Sequential(nn.Linear(hidden, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 1))
    raise ValueError(f"grun gate must be one of {GATES}, got {kind!r}")


class GatedLoReFT(nn.Module):
    def __init__(self, hidden: int, rank: int, gate: str):
        super().__init__()
        if not 1 <= rank <= hidden:
            raise ValueError(f"grun rank must be in [1, hidden size {hidden}], got {rank}")
        self.rotate = orthogonal(nn.Linear(hidden, rank, bias=False))  # weight R: [r, d], R·Rᵀ = I
        self.learned = nn.Linear(hidden, rank)                          # W·h + b
        self.gate = make_gate(gate, hidden)

    def forward(self, h: torch.Tensor, gate_open: Optional[float] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(Φ(h), gate logit s(h)) for h of shape [N, d]; `gate_open` forces σ(s) (tests)."""
        R = self.rotate.weight
        logit = self.gate(h).squeeze(-1)
        gate = torch.sigmoid(logit) if gate_open is None else torch.full_like(logit, gate_open)
        edit = (self.learned(h) - h @ R.T) @ R
        return h + gate.unsqueeze(-1) * edit, logit


def last_attended(attention_mask: Optional[torch.Tensor], batch: int, length: int, device) -> torch.Tensor:
    """Index of the last token with attention 1 (works for left and right padding)."""
    if attention_mask is None:
        return torch.full((batch,), length - 1, dtype=torch.long, device=device)
    flipped_first = attention_mask.flip(-1).long().argmax(dim=-1)
    return (length - 1 - flipped_first).to(device)


def prompt_end_from_labels(labels: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Last prompt token = first labelled token − 1 (rows without labels: last attended token)."""
    labelled = labels != tokens.IGNORE
    first = labelled.long().argmax(dim=-1) - 1
    fallback = last_attended(attention_mask, labels.size(0), labels.size(1), labels.device)
    return torch.where(labelled.any(dim=-1), first.clamp(min=0), fallback)


def prompt_end_from_suffix(input_ids: torch.Tensor, suffix: list[int]) -> Optional[torch.Tensor]:
    """First position where the prompt-closing tokens end, per row; None if a row lacks them."""
    n = len(suffix)
    if n == 0 or input_ids.size(1) < n:
        return None
    windows = input_ids.unfold(1, n, 1)                                 # [B, T−n+1, n]
    hits = (windows == torch.tensor(suffix, device=input_ids.device)).all(-1)
    if not bool(hits.any(dim=-1).all()):
        return None
    return hits.long().argmax(dim=-1) + n - 1


def common_suffix(a: list[int], b: list[int]) -> list[int]:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return a[len(a) - n:] if n else []


class GRUNEdits(nn.Module, SnapshotExtras):
    """The interventions plus the hooks that apply them; attached to the model as `model.grun`."""

    def __init__(self, hidden: int, layers: list[int], rank: int, gate: str, prompt_suffix=None):
        super().__init__()
        self.layers = [int(layer) for layer in layers]
        self.interventions = nn.ModuleDict({str(layer): GatedLoReFT(hidden, rank, gate) for layer in self.layers})
        self._attached_to: list[nn.Module] = []  # the models whose EDITS_NEED_ATTENTION_MASK follows the suffix
        self.prompt_suffix = prompt_suffix  # None: not learned yet
        self.enabled = True
        self.gate_open: Optional[float] = None
        self._known: dict[int, tuple] = {}  # id(input_ids) → (that tensor, positions): training, explicit
        self._records: Optional[dict[int, list[torch.Tensor]]] = None
        self._positions: Optional[torch.Tensor] = None  # for the forward in progress; None: no edit
        self._key: Optional[int] = None
        self._handles: list = []

    @property
    def prompt_suffix(self) -> Optional[list[int]]:
        return self._prompt_suffix

    @prompt_suffix.setter
    def prompt_suffix(self, value: Optional[list[int]]) -> None:
        """Without a suffix `_locate` finds the prompt end from the attention mask (else the last
        column): the models it is attached to say so while that holds."""
        self._prompt_suffix = value
        for model in self._attached_to:
            setattr(model, EDITS_NEED_ATTENTION_MASK, not value)

    def snapshot_extras(self) -> dict:
        return {"grun_prompt_suffix": list(self.prompt_suffix or [])}

    def load_snapshot_extras(self, extras: dict) -> None:
        if "grun_prompt_suffix" in extras:
            self.prompt_suffix = list(extras["grun_prompt_suffix"]) or None

    # ---- hooks
    def attach(self, model: nn.Module) -> None:
        blocks = decoder_layers(model)
        bad = [layer for layer in self.layers if not 0 <= layer < len(blocks)]
        if bad:
            raise ValueError(f"grun layers {bad} do not exist: the model has {len(blocks)} blocks (0..{len(blocks) - 1})")
        self._handles.append(model.register_forward_pre_hook(self._locate, with_kwargs=True))
        for layer in self.layers:
            self._handles.append(blocks[layer].register_forward_hook(self._edit_hook(layer)))
        setattr(model, EDITS_PROMPT_POSITIONS, True)  # read by the evaluation (methods.parametrizations.base)
        self._attached_to.append(model)
        setattr(model, EDITS_NEED_ATTENTION_MASK, not self.prompt_suffix)

    def _locate(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        cache = kwargs.get("past_key_values")
        self._positions, self._key = None, None
        if ids is None or not self.enabled:
            return
        if cache is not None and hasattr(cache, "get_seq_length") and cache.get_seq_length() > 0:
            return  # a decoding step after the prompt: the edit lives in the prompt's KV cache
        self._key = id(ids)
        known = self._known.get(self._key)
        if known is not None and known[0] is ids:
            self._positions = known[1]
            return
        found = prompt_end_from_suffix(ids, self.prompt_suffix or [])
        self._positions = found if found is not None else last_attended(
            kwargs.get("attention_mask"), ids.size(0), ids.size(1), ids.device)

    def _edit_hook(self, layer: int):
        def hook(module, args, output):
            if self._positions is None:
                return None
            hidden = output[0] if isinstance(output, tuple) else output
            rows = torch.arange(hidden.size(0), device=hidden.device)
            picked = hidden[rows, self._positions]
            edited, logit = self.interventions[str(layer)](picked.float(), self.gate_open)
            if self._records is not None:
                self._records.setdefault(self._key, []).append(logit)
            hidden = hidden.index_put((rows, self._positions), edited.to(hidden.dtype))
            return (hidden, *output[1:]) if isinstance(output, tuple) else hidden
        return hook

    # ---- contexts
    @contextlib.contextmanager
    def disabled(self):
        previous, self.enabled = self.enabled, False
        try:
            yield
        finally:
            self.enabled = previous

    @contextlib.contextmanager
    def at_positions(self, input_ids: torch.Tensor, positions: torch.Tensor):
        """Edit the forwards of exactly this `input_ids` tensor at `positions` (one index per row)."""
        self._known[id(input_ids)] = (input_ids, positions.to(input_ids.device))
        try:
            yield
        finally:
            self._known.pop(id(input_ids), None)

    def use_batches(self, batches: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Positions from the labels for this micro-batch's tensors, kept until the next micro-batch
        (the loop's extra retain-NLL task and analyzer probes forward the same tensors later)."""
        ends = {name: prompt_end_from_labels(b["labels"], b["attention_mask"]) for name, b in batches.items()}
        self._known = {id(b["input_ids"]): (b["input_ids"], ends[name]) for name, b in batches.items()}
        return ends

    @contextlib.contextmanager
    def recording(self):
        """Collect gate logits per forwarded input_ids tensor: {id: [per-layer logits]}."""
        self._records = {}
        try:
            yield self._records
        finally:
            self._records = None

    def learn_prompt_suffix(self, batch: dict[str, torch.Tensor], ends: torch.Tensor) -> None:
        for row, end in zip(batch["input_ids"].tolist(), ends.tolist()):
            prompt = row[max(0, end + 1 - MAX_SUFFIX):end + 1]
            self.prompt_suffix = prompt if self.prompt_suffix is None else common_suffix(self.prompt_suffix, prompt)

    def settings(self) -> dict:
        first = self.interventions[str(self.layers[0])]
        gate = "linear" if isinstance(first.gate, nn.Linear) else "mlp_3"
        return {"layers": self.layers, "rank": first.learned.out_features, "gate": gate,
                "hidden_size": first.learned.in_features, "prompt_suffix": self.prompt_suffix or []}


PAPER_LAYERS, PAPER_DEPTH = (20, 25, 31), 32  # GRUN's layers for its 32-layer models (Llama-3.1-8B, Mistral-7B)


def default_layers(n_blocks: int) -> list[int]:
    """GRUN's layers at the same relative depths: [20, 25, 31] for 32 blocks, [19, 23, 29] for SmolLM2's
    30 (the paper's list hard-codes 32 blocks, so a 30-block model had no block 31); distinct, in range."""
    return sorted({min(n_blocks - 1, round(layer * (n_blocks - 1) / (PAPER_DEPTH - 1))) for layer in PAPER_LAYERS})


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a causal LM (Llama/Mistral/Phi: model.model.layers)."""
    base = getattr(model, "get_base_model", lambda: model)()  # peft wraps the HF model
    inner = getattr(base, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise ValueError(f"grun cannot find the decoder blocks of {type(base).__name__} "
                         "(expected model.model.layers, as in Llama/Mistral/Phi)")
    return layers


def hidden_size(model: nn.Module) -> int:
    return int(model.config.hidden_size)


def gate_bce(forget_logits: torch.Tensor, retain_logits: torch.Tensor) -> torch.Tensor:
    """Mean BCE over all gate values of all layers, forget target 1, retain target 0.

    On logits (fp32) rather than GRUN's nn.BCELoss on bf16 sigmoids: same value, no log clamp at −100.
    """
    logits = torch.cat([forget_logits, retain_logits])
    targets = torch.cat([torch.ones_like(forget_logits), torch.zeros_like(retain_logits)])
    return F.binary_cross_entropy_with_logits(logits.float(), targets)


def warmup_factor(step: int, warmup_steps: int, n_layers: int) -> float:
    """GRUN's w(t) = min(global_step / (T_warm·|layers|), 1); global_step counts finished steps."""
    if warmup_steps <= 0:
        return 1.0
    return min((step - 1) / (warmup_steps * n_layers), 1.0)


@PARAMETRIZATIONS.register("grun")
class GRUN(Parametrization):
    # layers: block indices whose output (residual stream) is edited; "auto": GRUN's [20, 25, 31] of its
    # 32-layer models at the same relative depths of this model (default_layers)
    defaults = {"layers": "auto", "rank": 4, "gate": "linear", "gate_weight": 10.0,
                "gate_warmup_steps": 0, "save_base": "auto"}
    extra_streams = ("forget", "retain")
    fsdp_savable = False  # saves the edits of one unsharded model
    reports_gates = True

    def __init__(self, **args):
        super().__init__(**args)
        if self.args["gate"] not in GATES:
            raise ValueError(f"grun gate must be one of {GATES}, got {self.args['gate']!r}")
        if not self.args["layers"] or (isinstance(self.args["layers"], str) and self.args["layers"] != "auto"):
            raise ValueError("grun layers must be 'auto' or name at least one block index, e.g. [20, 25, 31]")
        if self.args["save_base"] not in ("auto", True, False):
            raise ValueError("grun save_base must be 'auto', true or false")
        self.edits: Optional[GRUNEdits] = None

    def prepare(self, model, needs_reference):
        model.requires_grad_(False)
        device = next(model.parameters()).device
        layers = self.args["layers"]
        layers = default_layers(len(decoder_layers(model))) if layers == "auto" else list(layers)
        self.edits = GRUNEdits(hidden_size(model), layers, int(self.args["rank"]),
                               self.args["gate"]).to(device)
        self.edits.attach(model)
        model.grun = self.edits  # a submodule: moved, checkpointed and named with the model
        self.reference = None    # the reference is the same model with the edits switched off
        return model

    def extra_weights(self):
        return {"gate": float(self.args["gate_weight"])}

    def task_losses(self, objective, model, batches, reference, step):
        edits = self.edits
        ends = edits.use_batches(batches)
        with edits.recording() as records:
            losses = objective.losses(model, batches, reference)
            gates = {name: self._gate_logits(model, batches[name], records) for name in ("forget", "retain")}
        if model.training:
            for name in ("forget", "retain"):
                edits.learn_prompt_suffix(batches[name], ends[name])
        factor = warmup_factor(step, int(self.args["gate_warmup_steps"]), len(edits.layers))
        out = {name: loss * factor for name, loss in losses.items()} if factor != 1.0 else dict(losses)
        out["gate"] = gate_bce(gates["forget"], gates["retain"])
        return out

    def _gate_logits(self, model, batch, records) -> torch.Tensor:
        """Gate logits of the objective's own forward of this batch, or of one extra forward."""
        key = id(batch["input_ids"])
        if key not in records:  # the objective did not run this stream (e.g. GA has no retain term)
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return torch.cat(records[key][:len(self.edits.layers)])

    @torch.no_grad()
    def reference_logits(self, model, batch):
        with self.edits.disabled():
            return tokens.logits_of(model, batch)

    def trainable_parameters(self, model):
        return [(f"grun.{name}", p) for name, p in self.edits.named_parameters()]

    def save(self, model, path, state_dict=None):
        """grun_config.json (base reference + settings) and grun_edits.safetensors into the folder
        `path` (the caller makes it atomic); the base weights are copied to `base/` only when the
        model was not loaded from a folder or Hub id. Works on the model `train()` was given."""
        if state_dict is not None:
            raise NotImplementedError("saving GRUN edits trained under FSDP2 is not supported yet; GRUN "
                                      "trains ~0.1-3 M parameters, so run it single-process or with DDP")
        edits = self.edits if self.edits is not None else getattr(model, "grun", None)
        if edits is None:
            raise ValueError("this model carries no GRUN edits (was it trained with parametrization 'grun'?)")
        save_grun(model, edits, path, self.args["save_base"])


def save_grun(model: nn.Module, edits: GRUNEdits, path, save_base="auto") -> Path:
    source = getattr(model, "name_or_path", "") or getattr(model.config, "_name_or_path", "")
    copy_base = save_base is True or (save_base == "auto" and not source)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if copy_base:
        delattr(model, "grun")  # save the plain base weights
        try:
            model.save_pretrained(str(path / "base"))
        finally:
            model.grun = edits
        source = "base"
    elif os.path.isdir(source):
        source = str(Path(source).resolve())
    model.config.save_pretrained(str(path))  # architecture only (no weights): tokenizer/format lookups work
    save_file({k: v.detach().cpu().contiguous() for k, v in edits.state_dict().items()}, str(path / EDITS_FILE))
    atomic.write_json(path / CONFIG_FILE, {"base_model": source, **edits.settings(), "position": "last prompt token"})
    return path


def load_grun_model(path, *, dtype=None, device=None) -> nn.Module:
    """The base model of a saved GRUN run with its trained edits attached (eval mode).

    `model(...)` and `model.generate(...)` apply the edits; `model.grun.at_positions(ids, positions)`
    overrides where the prompt ends.
    """
    from transformers import AutoModelForCausalLM

    path = Path(path)
    config_file = path / CONFIG_FILE
    if not config_file.is_file():
        raise FileNotFoundError(f"{path} is not a saved GRUN model: {CONFIG_FILE} is missing "
                                "(save it with the grun parametrization's save())")
    settings = json.loads(config_file.read_text(encoding="utf-8"))
    base = settings["base_model"]
    base = str(path / base) if base == "base" else base
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype or "auto")
    edits = GRUNEdits(settings["hidden_size"], settings["layers"], settings["rank"], settings["gate"],
                      settings["prompt_suffix"] or None)
    edits.load_state_dict(load_file(str(path / EDITS_FILE)))
    edits.attach(model)
    model.grun = edits
    model.requires_grad_(False)
    if device is not None:
        model.to(device)
    return model.eval()
