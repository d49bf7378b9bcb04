"""Where a number came from: config hash, code version, library versions, hardware."""
from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from common.atomic import dumps

TRACKED_LIBRARIES = (
    "torch", "transformers", "tokenizers", "datasets", "accelerate", "peft", "lm_eval",
    "rouge_score", "scipy", "scikit-learn", "numpy", "pandas", "snakemake", "huggingface_hub",
)
REPO_ROOT = Path(__file__).resolve().parent.parent


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of the canonical JSON form (sorted keys): equal configs hash equally across runs."""
    return "sha256:" + hashlib.sha256(dumps(config, indent=None).encode()).hexdigest()


@lru_cache(maxsize=1)
def code_version() -> str:
    """`git describe` of the checkout (with -dirty), else the installed package version."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"], cwd=REPO_ROOT,
            capture_output=True, text=True, timeout=10, check=True,
        )
        return "git:" + out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        try:
            return "pkg:" + importlib.metadata.version("unlearn-bench")
        except importlib.metadata.PackageNotFoundError:
            return "unknown"


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["accelerator"] = "cuda"
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        else:
            info["accelerator"] = "cpu"
    except ImportError:
        info["accelerator"] = "unknown"
    return info


def provenance(config: dict[str, Any]) -> dict[str, Any]:
    """The provenance block of the result contract (see common/contract.py)."""
    return {
        "config_hash": config_hash(config),
        "code_version": code_version(),
        "libraries": library_versions(),
        "hardware": hardware(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
