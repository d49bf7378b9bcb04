"""Where a number came from: config hash, code version, library versions, environment lock, hardware."""
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
LOCK_FILE = REPO_ROOT / "requirements.lock"  # exact versions `make venv` installs (see Makefile)


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


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-")


def locked_versions(text: str) -> dict[str, str]:
    """`name==version` pins of a pip-compile lock file (comments and options skipped)."""
    pins = {}
    for line in text.splitlines():
        requirement = line.split("#", 1)[0].strip()
        name, sep, version = requirement.partition("==")
        if sep and name and not name.startswith("-"):
            pins[_normalized(name.split("[", 1)[0].strip())] = version.split(";", 1)[0].strip()
    return pins


@lru_cache(maxsize=1)
def environment_lock() -> dict[str, Any]:
    """Hash of requirements.lock and the tracked libraries whose installed version differs from it.

    Two results with the same lock hash and no drift ran on the same package versions."""
    try:
        data = LOCK_FILE.read_bytes()
    except OSError:
        return {"lock_file": None, "lock_hash": None, "drift": {}}
    pins = locked_versions(data.decode("utf-8", errors="replace"))
    drift = {name: {"installed": version, "locked": pins[_normalized(name)]}
             for name, version in library_versions().items()
             if _normalized(name) in pins and pins[_normalized(name)] != version}
    return {"lock_file": LOCK_FILE.name, "lock_hash": "sha256:" + hashlib.sha256(data).hexdigest(),
            "drift": drift}


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
        "environment": environment_lock(),
        "hardware": hardware(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
