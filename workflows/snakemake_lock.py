"""May a folder's Snakemake directory lock be removed? Only when no live Snakemake works there.

Snakemake's lock files (`.snakemake/locks/*.lock`) list the files a run reads and writes, not the
process that wrote them, so a lock left by a hard-killed run looks exactly like the lock of a run
that is still going. `make demo` removes stale locks so a killed demo resumes; it asks this module
first, which looks for a live Snakemake process whose working folder (or `--directory`) is this
folder. A lock is removed only when there is none: a plain `snakemake` started by hand in the same
folder keeps its lock, and the new run then meets Snakemake's own "Directory cannot be locked".

Usage (exit status 0: safe to unlock; 1: a live Snakemake works here, its pids are printed):
    python -m workflows.snakemake_lock [--directory DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import psutil

DIRECTORY_FLAGS = ("--directory", "-d")


def is_snakemake(cmdline: list[str]) -> bool:
    """`snakemake ...`, `python .../bin/snakemake ...` or `python -m snakemake ...`."""
    head = cmdline[:3]
    if any(Path(part).name == "snakemake" for part in head):
        return True
    return any(a == "-m" and b == "snakemake" for a, b in zip(head, head[1:]))


def working_folder(cmdline: list[str], cwd: str) -> Path:
    """The folder a Snakemake process works in: its `--directory` (relative to its cwd) or its cwd."""
    for index, part in enumerate(cmdline):
        for flag in DIRECTORY_FLAGS:
            if part == flag and index + 1 < len(cmdline):
                return _resolve(Path(cwd) / cmdline[index + 1])
            if part.startswith(flag + "=") and flag.startswith("--"):
                return _resolve(Path(cwd) / part[len(flag) + 1:])
    return _resolve(Path(cwd))


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path


def live_snakemake(directory: str | os.PathLike = ".") -> list[int]:
    """Pids of live Snakemake processes (other than this one) working in `directory`."""
    folder = _resolve(Path(directory))
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        info = process.info
        if info["pid"] == os.getpid() or not info["cmdline"] or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if not is_snakemake(info["cmdline"]):
            continue
        if info["cwd"] is None:  # another user's process: its folder cannot be read, so assume it is here
            found.append(info["pid"])
        elif working_folder(info["cmdline"], info["cwd"]) == folder:
            found.append(info["pid"])
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workflows.snakemake_lock",
        description="Exit 0 when no live Snakemake works in DIR (its directory lock is stale and may be "
                    "removed), 1 when one does (its pids are printed; leave its lock alone).")
    parser.add_argument("--directory", default=".", help="the Snakemake working folder")
    args = parser.parse_args(argv)
    pids = live_snakemake(args.directory)
    if pids:
        print(f"{_resolve(Path(args.directory))}: Snakemake is running here (pid {', '.join(map(str, pids))}); "
              "its directory lock is kept. Wait for it to finish, or stop it, then run again (a process of "
              "another user counts as here: if none works in this folder, `snakemake --unlock` yourself).",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
