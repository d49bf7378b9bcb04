"""One cluster's Slurm profile: profiles/slurm plus its account and partition (and, for small test
clusters, caps on what a job may ask for), written as a profile folder of its own.

Why a derived profile: Snakemake's command-line `--default-resources`, `--set-resources` and
`--set-threads` replace the profile's whole block instead of merging into it, so
`--default-resources slurm_account=X` silently drops the profile's runtime and memory defaults.
Here the account and partition are added to the profile's own `default-resources`, and every
other line of profiles/slurm stays as it is.

    python -m workflows.slurm_profile --account A --partition P --out .snakemake/slurm-profile
    snakemake --workflow-profile .snakemake/slurm-profile ...
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from common import atomic
from workflows.grid import REPO_ROOT

BASE_PROFILE = REPO_ROOT / "profiles" / "slurm"


class ProfileError(ValueError):
    pass


def load(profile_dir: Path = BASE_PROFILE) -> dict[str, Any]:
    path = Path(profile_dir) / "config.yaml"
    if not path.is_file():
        raise ProfileError(f"{path}: no such profile file; give the folder that holds a Snakemake profile's config.yaml")
    return yaml.safe_load(path.read_text()) or {}


def _capped(value: Any, cap: int | None, where: str) -> Any:
    if cap is None:
        return value
    if not isinstance(value, int):
        raise ProfileError(f"{where} is {value!r}, not a number: cannot cap it; write a number in the profile")
    return min(value, cap)


def derive(profile: dict[str, Any], account: str | None = None, partition: str | None = None,
           max_threads: int | None = None, max_mem_mb: int | None = None,
           max_runtime: int | None = None) -> dict[str, Any]:
    """`profile` with `slurm_account` / `slurm_partition` in its default-resources and every
    thread / mem_mb / runtime value lowered to the caps given (None: left as it is)."""
    for name, cap in (("max_threads", max_threads), ("max_mem_mb", max_mem_mb), ("max_runtime", max_runtime)):
        if cap is not None and cap < 1:
            raise ProfileError(f"{name} must be at least 1, got {cap}")
    out = {key: value for key, value in profile.items()
           if key not in ("default-resources", "set-resources", "set-threads")}
    defaults = dict(profile.get("default-resources") or {})
    for key, value in (("slurm_account", account), ("slurm_partition", partition)):
        if value:
            # resources are Python expressions to Snakemake: a bare name would be read as a variable
            defaults[key] = repr(str(value))
    caps = {"mem_mb": max_mem_mb, "runtime": max_runtime}
    out["default-resources"] = {key: _capped(value, caps.get(key), f"default-resources: {key}")
                                for key, value in defaults.items()}
    out["set-threads"] = {rule: _capped(threads, max_threads, f"set-threads: {rule}")
                          for rule, threads in (profile.get("set-threads") or {}).items()}
    out["set-resources"] = {
        rule: {key: _capped(value, caps.get(key), f"set-resources: {rule}: {key}") for key, value in resources.items()}
        for rule, resources in (profile.get("set-resources") or {}).items()}
    return out


def write(profile: dict[str, Any], out_dir: Path) -> Path:
    path = Path(out_dir) / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ("# Written by `python -m workflows.slurm_profile` from profiles/slurm/config.yaml: edit that\n"
              "# file (or the command's options), not this one.\n")
    atomic.write_text(path, header + yaml.safe_dump(profile, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workflows.slurm_profile",
        description="Write profiles/slurm with this cluster's account and partition added to its "
                    "default-resources (a command-line --default-resources would replace the block).")
    parser.add_argument("--account", help="Slurm account (sbatch -A); empty: the plugin guesses it")
    parser.add_argument("--partition", help="Slurm partition (sbatch -p); empty: the cluster's default")
    parser.add_argument("--max-threads", type=int, help="cap every rule's threads (= CPUs asked) at this")
    parser.add_argument("--max-mem-mb", type=int, help="cap every rule's mem_mb at this")
    parser.add_argument("--max-runtime", type=int, help="cap every rule's runtime (minutes) at this")
    parser.add_argument("--base", type=Path, default=BASE_PROFILE, help="profile folder to start from")
    parser.add_argument("--out", type=Path, required=True, help="folder to write config.yaml into")
    args = parser.parse_args(argv)
    try:
        profile = derive(load(args.base), args.account, args.partition,
                         args.max_threads, args.max_mem_mb, args.max_runtime)
    except ProfileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(write(profile, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
