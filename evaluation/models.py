"""Loading causal LMs by preset name, Hub id or local folder, with the prompt format they need.

The `tiny-llama` preset is built locally: a small LlamaConfig plus a word-level tokenizer trained on
the benchmark text, saved with `save_pretrained`, so one loading path serves tiny and real models.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from evaluation.prompts import PromptFormat, get_format

MODEL_CARD = "ubench_model.json"  # written next to every model we save: preset and prompt format


@dataclass(frozen=True)
class ModelPreset:
    hub_id: str | None  # None: built locally (tiny-llama)
    prompt_format: str
    note: str = ""


PRESETS: dict[str, ModelPreset] = {
    "tiny-llama": ModelPreset(None, "phi", "built by `ubench finetune` from the benchmark text"),
    "phi-1.5": ModelPreset("microsoft/phi-1_5", "phi"),
    "tofu-ft-phi-1.5": ModelPreset("locuslab/tofu_ft_phi-1.5", "phi", "TOFU-legacy target"),
    "llama2-7b-chat": ModelPreset("NousResearch/Llama-2-7b-chat-hf", "llama2-chat", "TOFU-legacy base"),
    "tofu-ft-llama2-7b": ModelPreset("locuslab/tofu_ft_llama2-7b", "llama2-chat", "TOFU-legacy target"),
    "llama-3.2-1b-instruct": ModelPreset("meta-llama/Llama-3.2-1B-Instruct", "llama3-chat"),
    "llama-3.2-3b-instruct": ModelPreset("meta-llama/Llama-3.2-3B-Instruct", "llama3-chat"),
    "llama-3.1-8b-instruct": ModelPreset("meta-llama/Llama-3.1-8B-Instruct", "llama3-chat"),
    "llama-3-8b-instruct": ModelPreset("meta-llama/Meta-Llama-3-8B-Instruct", "llama3-chat", "RWKU"),
    # Base models get OU's plain Question/Answer tags (metrics.md §1.1).
    "llama-3.1-8b": ModelPreset("meta-llama/Llama-3.1-8B", "phi", "GRUN"),
    "mistral-7b": ModelPreset("mistralai/Mistral-7B-v0.1", "phi", "GRUN"),
    "zephyr-7b-beta": ModelPreset("HuggingFaceH4/zephyr-7b-beta", "phi", "WMDP target"),
}

# tiny-llama: as small as still memorises tofu-tiny (see evaluation/README.md for timings).
TINY_LLAMA_CONFIG = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                         tie_word_embeddings=True, rms_norm_eps=1e-6)
SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def get_preset(name: str) -> ModelPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model preset {name!r}; available: {', '.join(sorted(PRESETS))}") from None


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).exists() or name.count("/") > 1


def resolve(name_or_path: str) -> tuple[str, str | None]:
    """(what to pass to from_pretrained, prompt format name or None when unknown)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        card = path / MODEL_CARD
        fmt = json.loads(card.read_text())["prompt_format"] if card.is_file() else None
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} has no config.json: not a saved Hugging Face model folder "
                                    "(save one with model.save_pretrained(path))")
        return str(path), fmt
    if name_or_path in PRESETS:
        preset = PRESETS[name_or_path]
        if preset.hub_id is None:
            raise ValueError(f"preset {name_or_path!r} is built locally, not downloaded: pass the folder "
                             "written by `ubench finetune` (or `evaluation.models.build_tiny_llama`)")
        return preset.hub_id, preset.prompt_format
    if _looks_like_path(name_or_path):
        raise FileNotFoundError(f"model folder {name_or_path!r} does not exist; pass a folder saved with "
                                f"save_pretrained, a Hub id, or a preset ({', '.join(sorted(PRESETS))})")
    return name_or_path, None


def infer_format(name: str, tokenizer=None) -> PromptFormat:
    """Prompt format for a Hub id or folder without a model card, from its name."""
    lowered = name.lower()
    if "llama-2" in lowered and "chat" in lowered:
        return get_format("llama2-chat")
    if "llama-3" in lowered and "instruct" in lowered:
        return get_format("llama3-chat")
    return get_format("phi")


def evaluation_dtype(device) -> str:
    """bf16 on GPUs (both official TOFU pipelines evaluate in bf16), fp32 on the CPU."""
    import torch

    return "bfloat16" if torch.device(device).type == "cuda" else "float32"


def evaluation_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    source, _ = resolve(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:  # TOFU pads with EOS
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(name_or_path: str, *, prompt_format: str | None = None, dtype=None, device=None):
    """(model in eval mode, tokenizer, PromptFormat). Raises a clear error for a bad path."""
    from transformers import AutoModelForCausalLM

    source, card_format = resolve(name_or_path)
    try:
        tokenizer = load_tokenizer(name_or_path)
        if _is_grun_folder(source):  # a GRUN run: frozen base + gated edits applied by forward hooks
            from methods.parametrizations.grun import load_grun_model

            model = load_grun_model(source, dtype=dtype)
        else:
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype or "auto")
    except OSError as error:
        raise OSError(f"could not load model {name_or_path!r} (resolved to {source!r}): {error}") from error
    if device is not None:
        model.to(device)
    model.eval()
    chosen = prompt_format or card_format
    fmt = get_format(chosen) if chosen else infer_format(source, tokenizer)
    return model, tokenizer, fmt


def _is_grun_folder(source: str) -> bool:
    from methods.parametrizations.grun import CONFIG_FILE

    return (Path(source) / CONFIG_FILE).is_file()


def write_model_card(folder: str | Path, preset: str, prompt_format: str, **extra) -> None:
    (Path(folder) / MODEL_CARD).write_text(
        json.dumps({"preset": preset, "prompt_format": prompt_format, **extra}, indent=2), encoding="utf-8")


def train_word_tokenizer(texts: list[str]):
    """A word-level tokenizer over the benchmark text: one token per word learns fastest in a tiny
    model (no sub-word pieces to chain). Adds BOS on encode, like Llama tokenizers."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(unk_token=SPECIAL_TOKENS["unk_token"]))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = [SPECIAL_TOKENS[k] for k in ("pad_token", "bos_token", "eos_token", "unk_token")]
    backend.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=specials, min_frequency=1))
    bos = SPECIAL_TOKENS["bos_token"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, backend.token_to_id(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=backend, **SPECIAL_TOKENS)


def benchmark_texts(data) -> list[str]:
    """Every string of a TOFU-format dataset (all splits) plus the prompt tags, for the vocabulary."""
    texts = ["Question: Answer:", "[INST] [/INST]"]
    for rows in data.load_all().values():
        for row in rows:
            for value in row.values():
                texts.extend(value if isinstance(value, list) else [str(value)])
    return texts


def build_tiny_llama(texts: list[str], out_dir: str | Path, *, seed: int = 0, **overrides) -> Path:
    """Fresh randomly initialised tiny Llama + word tokenizer, saved atomically in HF format."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from common.atomic import atomic_dir

    tokenizer = train_word_tokenizer(texts)
    config = LlamaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         **{**TINY_LLAMA_CONFIG, **overrides})
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_model_card(tmp, "tiny-llama", "phi", seed=seed)
    return Path(out_dir)
