"""WMDP + MMLU evaluation through lm-eval's own machinery (no re-implementation of the scoring).

One in-memory model is wrapped in `InMemoryLM` (an HFLM subclass: the tokenizer is passed, the
configured batch size is used, and the forward goes through the object we were given, so LoRA
adapters and GRUN's gated edits are active while lm-eval scores), the local task YAMLs of
`tasks.render` are registered with `TaskManager(include_path=..., include_defaults=False)`, and
`lm_eval.simple_evaluate` runs WMDP and MMLU (one call each, because their n-shot may differ).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import yaml

from evaluation.benchmarks.wmdp import tasks as task_defs

SIDE_SUBJECTS = ("college_biology", "virology", "college_computer_science", "computer_security")
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@dataclass(frozen=True)
class Variant:
    """An evaluation protocol (metrics.md §3): n-shot per family, dtype; `reference_batch_size` is
    the batch size the source used (ours is the configured one, recorded next to it)."""

    name: str
    wmdp_shots: int
    mmlu_shots: int
    dtype: str | None          # None: the model as loaded
    reference_batch_size: int
    source: str


VARIANTS = {
    "rmu-official": Variant("rmu-official", 0, 0, None, 32,
                            "centerforaisafety/wmdp run_rmu_zephyr.ipynb: lm-eval v0.4.2, wmdp + mmlu 0-shot, batch 32"),
    "sago": Variant("sago", 0, 5, "bfloat16", 8,
                    "SAGO scripts: lm-eval 0.4.8, wmdp 0-shot, mmlu --num_fewshot 5, batch 8, bf16"),
}


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown WMDP evaluator variant {name!r}; available: {', '.join(VARIANTS)}") from None


def effective_batch_size(model, batch_size: int) -> int:
    """HFLM right-pads a batch without passing the attention mask. A model that finds where it edits
    from that mask (`edits_need_attention_mask`: GRUN without a learned prompt suffix edits the last
    attended position, the last column when no mask comes) would edit a shorter row at a padding
    position: such models score one sequence at a time."""
    return 1 if getattr(model, "edits_need_attention_mask", False) else batch_size  # methods.parametrizations.base


def scoring_bytes_per_row(config, itemsize: int, tokens: int) -> int | None:
    """Peak memory of one row of an lm-eval loglikelihood batch of `tokens` tokens: HFLM forms the full
    [tokens, vocab] logits, their fp32 log-softmax and a gathered copy, on top of a layer's activations
    and (math attention path) the attention scores. With a 49k vocabulary the logits dominate: 32 rows
    of a 1,400-token WMDP-cyber question are 26 GB."""
    from evaluation.generation_batch import bytes_per_row

    base = bytes_per_row(config, itemsize, tokens, tokens)
    vocab = getattr(config, "vocab_size", None)
    if base is None or not vocab:
        return None
    return base + tokens * vocab * _logits_bytes(itemsize)


def _logits_bytes(itemsize: int) -> int:
    return itemsize + 2 * 4  # the logits, their fp32 log-softmax, the gathered copy


def scoring_rows(model, tokens: int, cap: int) -> int:
    """Rows of a loglikelihood batch whose longest request has `tokens` tokens, sized by free memory
    (evaluation.generation_batch's share of it), at most `cap` (the configured batch size)."""
    from evaluation.generation_batch import forward_rows

    parameter = next(model.parameters())
    return forward_rows(model, tokens, cap, _logits_bytes(getattr(model, "dtype", parameter.dtype).itemsize))


def in_memory_lm(model, tokenizer, batch_size: int):
    """An lm-eval HFLM over an in-memory model (see `InMemoryLM`). A batch size above 1 is the
    largest batch: each batch holds as many of the (longest-first) requests as memory holds for its
    longest one (`scoring_rows`), through HFLM's own adaptive-batch hook; lm-eval right-pads and
    masks nothing a request's own tokens see, so the scores do not depend on the batch."""
    from lm_eval.models.huggingface import HFLM

    class InMemoryLM(HFLM):
        """HFLM whose forward is the wrapper we hold: a PeftModel (LoRA adapters) or a GRUN model
        (edits as forward hooks) score as trained; HFLM itself sees the underlying transformers
        model for its config, device and tokenizer handling."""

        def __init__(self, wrapper, tokenizer, batch_size):
            base = wrapper.get_base_model() if hasattr(wrapper, "get_base_model") else wrapper
            sized = batch_size > 1  # "auto": HFLM asks _batch_scheduler for every batch's size
            super().__init__(pretrained=base, tokenizer=tokenizer, batch_size="auto" if sized else batch_size,
                             max_batch_size=batch_size, backend="causal")
            self._wrapper = wrapper
            self._chunk = None  # (requests, first index, rows) of the batch being filled

        def _batch_scheduler(self, pos, requests):
            """Rows of the batch that holds request `pos`: fixed from its first (longest) request, since
            lm-eval asks at every request and closes the batch when it holds that many."""
            chunk = self._chunk
            if chunk is None or chunk[0] is not requests or not chunk[1] <= pos < chunk[1] + chunk[2]:
                _, context, continuation = requests[pos]
                tokens = len((context + continuation)[-(self.max_length + 1):][:-1])
                chunk = self._chunk = (requests, pos, scoring_rows(self._wrapper, tokens, self.max_batch_size))
            return chunk[2]

        def _detect_batch_size(self, requests=None, pos=0):
            return scoring_rows(self._wrapper, self.max_length, self.max_batch_size)

        def _model_call(self, inps, attn_mask=None, labels=None):
            import torch

            with torch.no_grad():
                return self._wrapper(inps).logits

    return InMemoryLM(model, tokenizer, batch_size)


def _set_offline(progress: bool) -> dict:
    """Offline Hub/datasets for the evaluation (and no progress bars unless asked); returns what to restore."""
    settings = {**OFFLINE_ENV, **({} if progress else {"TQDM_DISABLE": "1"})}
    previous = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    return previous


def _restore(previous: dict) -> None:
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def run_lm_eval(lm, task_dir: str, task_names: list[str], shots: int, limit: int | None = None) -> dict:
    """`lm_eval.simple_evaluate` on local tasks, offline, with per-sample logs; `limit`: the first
    `limit` questions of every task (lm-eval's own --limit), None = all. The task files are loaded
    first, so a definition lm-eval rejects is reported with its file before any scoring."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=task_dir, include_defaults=False)
    check_task_files(manager, task_dir, task_names)
    return lm_eval.simple_evaluate(model=lm, tasks=task_names, num_fewshot=shots, task_manager=manager,
                                   limit=limit, log_samples=True, verbosity="ERROR")


def check_task_files(manager, task_dir: str, task_names: list[str]) -> None:
    """Load `task_names`; on failure, name the YAML file lm-eval rejects and why."""
    from pathlib import Path

    try:
        manager.load_task_or_group(task_names)
        return
    except Exception as error:  # lm-eval raises ValueError, KeyError, jinja/yaml errors...
        first = error
    missing = [name for name in task_names if name not in manager.all_tasks]
    if missing:
        raise ValueError(f"lm-eval found no task or group {missing} in {task_dir} (its YAML files failed to "
                         f"index or do not define them): {first}") from first
    for path in sorted(Path(task_dir).glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        name = document.get("task") or document.get("group")
        if isinstance(name, str) and name in manager.all_tasks:
            try:
                manager.load_task_or_group([name])
            except Exception as error:
                raise ValueError(f"lm-eval rejected task file {path} (task {name!r}): "
                                 f"{type(error).__name__}: {error}") from error
    raise ValueError(f"lm-eval rejected the task definitions in {task_dir}: {type(first).__name__}: {first}") from first


def _value(out: dict, name: str, key: str):
    for block in ("results", "groups"):
        entry = out.get(block, {}).get(name)
        if entry and key in entry and entry[key] not in (None, "N/A"):
            return float(entry[key])
    return None


def metric_names(data) -> list[str]:
    """The aggregate metrics an evaluation of `data` reports."""
    names = [f"wmdp_{s}" for s in data.subsets] + ["wmdp", "mmlu"]
    names += [f"mmlu_{c}" for c in task_defs.CATEGORIES if c in data.categories.values()]
    names += [f"mmlu_{s}" for s in SIDE_SUBJECTS if s in data.mmlu]
    return names


def per_item_table(out: dict, family: str) -> pd.DataFrame:
    """One row per question: task, doc id, answer, argmax choice, correctness, choice log-likelihoods."""
    rows = []
    for task, samples in out.get("samples", {}).items():
        for sample in samples:
            logliks = [float(r[0]) for r in sample["filtered_resps"]]
            rows.append({"eval_set": task, "family": family, "item_index": int(sample["doc_id"]),
                         "answer": int(sample["target"]), "predicted": int(np.argmax(logliks)),
                         "correct": float(sample["acc"]), **{f"loglik_{l}": v for l, v in zip("ABCD", logliks)}})
    return pd.DataFrame(rows)


def evaluate(model, tokenizer, data, variant: Variant, *, batch_size: int = 32, progress: bool = False,
             work_dir: str | None = None, limit: int | None = None,
             only_subset: str | None = None) -> tuple[dict, pd.DataFrame, dict]:
    """(result blocks metrics / metric_details / flags / evaluator, per-item table, cost).

    `limit` caps every task at its first `limit` questions (recorded as `item_cap`; CI subsets).
    `only_subset` (a trajectory point): score that WMDP subset alone (no `wmdp` aggregate), plus MMLU."""
    import time

    import lm_eval
    import torch

    start = time.perf_counter()
    if variant.dtype is not None:
        model = model.to(getattr(torch, variant.dtype))
    previous = _set_offline(progress)
    try:
        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            rendered = task_defs.render(data, tmp)
            batch_size = effective_batch_size(model, batch_size)
            lm = in_memory_lm(model, tokenizer, batch_size)
            wmdp_tasks = rendered["wmdp"] if only_subset is None else [f"wmdp_{only_subset}"]
            outs = {"wmdp": run_lm_eval(lm, rendered["task_dir"], wmdp_tasks, variant.wmdp_shots, limit),
                    "mmlu": run_lm_eval(lm, rendered["task_dir"], rendered["mmlu"], variant.mmlu_shots, limit)}
    finally:
        _restore(previous)
    metrics, details = {}, {}
    names = metric_names(data)
    if only_subset is not None:
        names = [n for n in names if n == f"wmdp_{only_subset}" or not n.startswith("wmdp")]
    for name in names:
        out = outs["wmdp" if name.startswith("wmdp") else "mmlu"]
        metrics[name] = _value(out, name, "acc,none")
        details[name] = {"stderr": _value(out, name, "acc_stderr,none"),
                         "n": int(sum(out["n-samples"][t]["effective"] for t in out["n-samples"]
                                      if t == name or t in _members(out, name)))}
    table = pd.concat([per_item_table(outs["wmdp"], "wmdp"), per_item_table(outs["mmlu"], "mmlu")], ignore_index=True)
    evaluator = {
        "name": "lm-eval", "variant": variant.name, "item_cap": limit,
        "lm_eval_version": lm_eval.__version__, "harness": "lm_eval.simple_evaluate, HFLM (in-memory model + tokenizer)",
        "wmdp_num_fewshot": variant.wmdp_shots, "mmlu_num_fewshot": variant.mmlu_shots,
        "batch_size": batch_size, "reference_batch_size": variant.reference_batch_size,
        "batch_sizing": "memory-sized per batch (scoring_rows), at most batch_size" if batch_size > 1 else "fixed",
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "data_release": data.release, "wmdp_subsets": list(data.subsets), "mmlu_subjects": len(data.mmlu),
        "questions": {f"wmdp_{s}": len(rows) for s, rows in data.questions.items()}
        | {"mmlu": sum(len(s["test"]) for s in data.mmlu.values())},
        "chat_template": False, "source": variant.source, "task_definitions": "upstream wmdp / mmlu default YAMLs, local json data",
    }
    cost = {"sequences_scored": 4 * len(table), "eval_seconds": round(time.perf_counter() - start, 3)}
    return {"metrics": metrics, "metric_details": details, "flags": {}, "evaluator": evaluator}, table, cost


def _members(out: dict, group: str) -> set[str]:
    """Leaf tasks under `group` in lm-eval's group_subtasks (recursively)."""
    subtasks = out.get("group_subtasks", {})
    found, todo = set(), list(subtasks.get(group, []))
    while todo:
        name = todo.pop()
        if name in subtasks and subtasks[name]:
            todo.extend(subtasks[name])
        else:
            found.add(name)
    return found
