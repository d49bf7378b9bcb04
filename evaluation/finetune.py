"""Fine-tuning a benchmark's reference models: the target and the retain/retrain reference.

Which split each is trained on is the benchmark's call (`Benchmark.finetune_split`: e.g. `full` /
`retainXX`); the corpus is QA pairs (loss on the answer tokens, encode_qa) or raw text (every
token, encode_text_chunks). AdamW, linear schedule with one epoch of warmup. The loop is the team's
one training loop (`methods.train`, objective `finetune`, stream `train`). The result is saved
atomically in Hugging Face format together with its tokenizer.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

from common.atomic import atomic_dir
from evaluation import benchmarks, models
from evaluation.benchmarks.base import with_paraphrased_answers
from evaluation.encoding import encode_corpus
from evaluation.finetune_presets import FinetunePreset, default_preset, get_preset, recipe_for  # noqa: F401


def parse_json_pairs(pairs: list[str], flag: str, accepted: set[str] | None = None) -> dict:
    """`key=value` strings; values parsed as JSON when possible (numbers, lists), else kept as text."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or (accepted is not None and key not in accepted):
            expected = f"one of {sorted(accepted)}" if accepted is not None else "a key"
            raise ValueError(f"{flag} expects {expected} as key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def parse_overrides(pairs: list[str]) -> dict:
    """`key=value` overrides of preset fields (`ubench finetune --set`)."""
    out = parse_json_pairs(pairs, "--set", {f.name for f in dataclasses.fields(FinetunePreset)})
    for key in list(out):
        if key == "extra_splits":
            out[key] = tuple(out[key]) if isinstance(out[key], list) else tuple(filter(None, str(out[key]).split(",")))
    return out


def starting_model(model: str, bench, data, seed: int, **tiny_overrides):
    """(model, tokenizer, PromptFormat, preset name): a fresh tiny-llama, or a loaded checkpoint."""
    if model == "tiny-llama":
        with tempfile.TemporaryDirectory() as tmp:
            folder = models.build_tiny_llama(bench.vocabulary_texts(data), Path(tmp) / "init", seed=seed,
                                             **tiny_overrides)
            loaded = models.load_model(str(folder))
        bench.prepare_tiny_tokenizer(loaded[1])
        return (*loaded, "tiny-llama")
    return (*models.load_model(model), model if model in models.PRESETS else "custom")


def run(benchmark: str, data_dir: str | None, split: str, model: str, out_dir: str | Path, *,
        preset: str | None = None, overrides: dict | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Fine-tune `model` on `split` (+ the preset's extra splits) and save it to `out_dir`."""
    from methods.train import TrainConfig, train

    preset_name = preset or default_preset(model, benchmark)
    # RANK / WORLD_SIZE are set by every launcher (accelerate launch, torchrun) before any process group
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    recipe = recipe_for(preset_name, overrides, processes)
    bench = benchmarks.get(benchmark)
    data = bench.open(data_dir)
    corpus = bench.finetune_corpus(data, split, recipe.extra_splits)
    if recipe.paraphrased_forget:
        corpus = with_paraphrased_answers(corpus, bench.paraphrased_answers(data, recipe.paraphrased_forget),
                                          recipe.paraphrased_forget)
    net, tokenizer, fmt, model_preset = starting_model(model, bench, data, seed, **recipe.tiny_model)
    examples = encode_corpus(tokenizer, fmt, corpus, recipe.max_length, labels_from=recipe.answer_labels)
    config = TrainConfig(objective="finetune", lr=recipe.lr, epochs=recipe.epochs, batch_size=recipe.batch_size,
                         grad_accum=recipe.grad_accum, weight_decay=recipe.weight_decay,
                         warmup_ratio=recipe.warmup_ratio, scheduler=recipe.scheduler, seed=seed)
    # Under `accelerate launch` (DDP, FSDP2) every rank trains; only the main process writes, and a
    # sharded model's full weights are gathered first (a collective every rank joins), as in `unlearn`
    from methods.checkpoint import full_model_state, is_sharded

    # RANK is set by every launcher (accelerate launch, torchrun) before any process group exists
    out_dir, main = Path(out_dir), int(os.environ.get("RANK", "0")) == 0
    scratch = out_dir.with_name(f".{out_dir.name}.training")  # train_log etc.; same path on every rank
    if main and scratch.exists():
        shutil.rmtree(scratch)
    try:
        result = train(net, {"train": examples}, config, scratch, tokenizer.pad_token_id, progress=progress)
        if result.status != "ok":
            raise RuntimeError(f"fine-tuning diverged at step {result.diverged_step}: {result.reason}")
        full_state = full_model_state(net) if is_sharded(net) else None
        summary = {"benchmark": benchmark, "split": split, "corpus": corpus.source, "start": model,
                   "finetune_preset": preset_name, "num_processes": processes,
                   "recipe": dataclasses.asdict(recipe), "examples": len(examples), "seed": seed,
                   "train_result": dataclasses.asdict(result)}
        if main:
            with atomic_dir(out_dir) as tmp:
                for log in sorted(scratch.glob("*")) if scratch.is_dir() else []:
                    if log.is_file():
                        shutil.copy2(log, tmp / log.name)
                net.save_pretrained(tmp, **({} if full_state is None else {"state_dict": full_state}))
                tokenizer.save_pretrained(tmp)
                models.write_model_card(tmp, model_preset, fmt.name, finetune=summary,
                                        **models.inherited_card_fields(model))
    finally:
        if main and scratch.exists():
            shutil.rmtree(scratch)
    return {"out": str(out_dir), **summary}
