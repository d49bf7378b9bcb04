from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def snakemake(*args: str, cwd: Path = REPO, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run the project's Snakefile from `cwd` (results/ and work/ land there)."""
    command = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), *args]
    env = {**os.environ, "PATH": f"{SNAKEMAKE.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of `snakemake -n`."""
    match = re.search(r"Job stats:\n(.*?)\n\s*\n", output, re.S)
    assert match, f"no job stats in snakemake output:\n{output[-3000:]}"
    counts = {}
    for line in match.group(1).splitlines()[2:]:
        name, count = line.split()
        counts[name] = int(count)
    total = counts.pop("total")
    assert total == sum(counts.values()), f"job stats do not add up: {counts} vs total {total}"
    return counts


@pytest.fixture
def repo() -> Path:
    return REPO
