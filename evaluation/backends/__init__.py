"""Which engine produces the greedy text of a generation pass: transformers (always) or vLLM.

`ubench evaluate --generation-backend auto|transformers|vllm` (config: `evaluation.generation_backend`)
sets the request for the process (`requested`); the harness asks `select` once, at its first
generation batch. vLLM is used when it is importable, a CUDA GPU is present and the model is a
plain Hugging Face checkpoint on disk whose greedy decoding is plain argmax (no LoRA adapters, no
GRUN generation-time edits, no repetition penalties); otherwise the pass falls back to transformers
and the reason is recorded. `vllm` asked explicitly fails when vLLM or the GPU is missing (the
environment is wrong); a model vLLM cannot reproduce falls back under either request.

Before vLLM's text is trusted, the first `SAMPLE_PROMPTS` prompts of the pass are decoded by both
engines (`compare_sample`): when more than `MAX_MISMATCH_FRACTION` of them differ within their first
`COMPARE_TOKENS` tokens the pass falls back to transformers (numerics of a bf16 GPU kernel may move a
late argmax; an early difference on several prompts means the engines do not run the same model).
The evaluator block records the engine used, the request, the reason and the check.
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

CHOICES = ("auto", "transformers", "vllm")
SAMPLE_PROMPTS = 8
COMPARE_TOKENS = 32
MAX_MISMATCH_FRACTION = 0.25

_requested = "auto"
_made: list["Selection"] | None = None  # selections of the current `request` block


def check_choice(choice: str) -> str:
    if choice not in CHOICES:
        raise ValueError(f"unknown generation backend {choice!r}; accepted: {', '.join(CHOICES)}")
    return choice


def requested() -> str:
    """The process-wide request (`ubench evaluate --generation-backend`); harnesses read it."""
    return _requested


@contextlib.contextmanager
def request(choice: str) -> Iterator[list["Selection"]]:
    """Within the block harnesses use `choice`; yields the list of selections they make."""
    global _requested, _made
    previous = _requested, _made
    _requested, _made = check_choice(choice), []
    try:
        yield _made
    finally:
        _requested, _made = previous


def summary(made: list["Selection"], choice: str) -> dict[str, Any]:
    """The evaluator block's `generation_backend_selection`: the engine of each generation pass."""
    if not made:
        return {"requested": choice, "backend": "transformers", "reason": "no generation pass", "sample_check": None}
    records = [selection.record() for selection in made]
    return records[0] if len(records) == 1 else {"requested": choice, "backend": "+".join(
        dict.fromkeys(r["backend"] for r in records)), "passes": records}


@dataclass
class Selection:
    """What one generation pass runs on, and why; `record()` goes into the evaluator block."""
    requested: str
    backend: str                  # "vllm" or "transformers"
    reason: str
    sample_check: dict[str, Any] | None = None
    generator: Any = field(default=None, repr=False)  # a VLLMGenerator when backend == "vllm"

    def record(self) -> dict[str, Any]:
        return {"requested": self.requested, "backend": self.backend, "reason": self.reason,
                "sample_check": copy.deepcopy(self.sample_check)}

    def fall_back(self, reason: str) -> None:
        self.backend, self.reason, self.generator = "transformers", reason, None


def vllm_importable() -> bool:
    return importlib.util.find_spec("vllm") is not None


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def checkpoint_folder(model) -> Path | None:
    """The folder the model was loaded from, when it holds a complete HF checkpoint vLLM can read."""
    location = getattr(getattr(model, "config", None), "_name_or_path", "") or getattr(model, "name_or_path", "")
    folder = Path(location) if location else None
    if folder is None or not (folder / "config.json").is_file():
        return None
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        return None
    return folder


def ineligible_model(model) -> str | None:
    """Why vLLM cannot reproduce this model's greedy text, or None."""
    from evaluation.greedy import plain_greedy_model

    if hasattr(model, "peft_config"):
        return "the model carries LoRA/PEFT adapters (vLLM would load the base checkpoint only)"
    if getattr(model, "edits_prompt_positions", False):
        return "the model carries GRUN generation-time edits (forward hooks vLLM does not run)"
    if not plain_greedy_model(model):
        return "the model's generation_config changes greedy decoding (e.g. a repetition penalty)"
    if checkpoint_folder(model) is None:
        return "the model was not loaded from a local Hugging Face checkpoint folder vLLM can read"
    return None


def select(choice: str, model) -> Selection:
    """The engine for `model` under request `choice` (before the sample check)."""
    selection = _select(check_choice(choice), model)
    if _made is not None:
        _made.append(selection)
    return selection


def _select(choice: str, model) -> Selection:
    if choice == "transformers":
        return Selection(choice, "transformers", "requested")
    missing = ("vllm is not installed (pip install -e '.[vllm]')" if not vllm_importable()
               else "no CUDA GPU" if not cuda_available() else None)
    if missing:
        if choice == "vllm":
            raise RuntimeError(f"--generation-backend vllm: {missing}; use auto or transformers")
        return Selection(choice, "transformers", missing)
    reason = ineligible_model(model)
    if reason:
        return Selection(choice, "transformers", reason)
    from evaluation.backends.vllm_backend import VLLMGenerator

    return Selection(choice, "vllm", "vllm importable, CUDA GPU, plain HF checkpoint",
                     generator=VLLMGenerator.for_model(model, checkpoint_folder(model)))


def without_stop(row: list[int], stops: set[int]) -> list[int]:
    """The tokens before the first stop id (engines differ on whether they return the stop token)."""
    cut = next((i for i, token in enumerate(row) if token in stops), len(row))
    return list(row[:cut])


def compare_sample(reference: list[list[int]], candidate: list[list[int]], stop_ids: list[int], *,
                   compare_tokens: int = COMPARE_TOKENS,
                   max_mismatch_fraction: float = MAX_MISMATCH_FRACTION) -> dict[str, Any]:
    """Greedy rows of transformers (`reference`) and the candidate engine, prompt by prompt: a
    prompt differs when its first `compare_tokens` tokens (stop excluded) are not identical."""
    if len(reference) != len(candidate):
        raise ValueError(f"sample check: {len(reference)} reference rows vs {len(candidate)} candidate rows")
    stops = set(stop_ids)
    differing, first = 0, None
    for index, (ref, cand) in enumerate(zip(reference, candidate)):
        a, b = without_stop(ref, stops)[:compare_tokens], without_stop(cand, stops)[:compare_tokens]
        if a != b:
            differing += 1
            if first is None:
                at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                first = {"prompt": index, "token": at}
    fraction = differing / len(reference) if reference else 0.0
    return {"prompts": len(reference), "differing": differing, "compare_tokens": compare_tokens,
            "max_mismatch_fraction": max_mismatch_fraction, "passed": fraction <= max_mismatch_fraction,
            "first_difference": first}
