"""`make demo` removes a Snakemake directory lock only when no live Snakemake works in the folder,
and checks the config with `ubench config check` before Snakemake reads it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workflows import snakemake_lock

from tests.workflows.conftest import REPO, SNAKEMAKE

RECORDER = "import sys; open(sys.argv[1], 'a').write(' '.join(sys.argv[2:]) + '\\n')"
SLOW_SNAKEFILE = 'rule slow:\n    output: "done.txt"\n    shell: "sleep 120 && touch {output}"\n'


def _start_plain_snakemake(folder: Path) -> subprocess.Popen:
    """A plain `snakemake` (as a user starts it by hand) holding the folder's directory lock."""
    (folder / "Snakefile").write_text(SLOW_SNAKEFILE)
    process = subprocess.Popen([str(SNAKEMAKE), "--cores", "1"], cwd=folder, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((folder / ".snakemake" / "locks").glob("*.lock")):
        assert process.poll() is None, "snakemake ended before it locked the folder"
        assert time.monotonic() < deadline, "snakemake did not lock the folder in 120 s"
        time.sleep(0.2)
    return process


def _kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)  # its own session: snakemake and its `sleep` job
    process.wait()


def _demo_run(folder: Path, log: Path) -> subprocess.CompletedProcess:
    """The Makefile's demo-run recipe as `make demo` calls it, with Snakemake and ubench replaced by
    a recorder of their arguments (the real lock check runs)."""
    recorder = f"{sys.executable} -c \"{RECORDER}\" {log}"
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    return subprocess.run(
        [make, "--no-print-directory", "-f", str(REPO / "Makefile"), "demo-run", "UNLOCK=1",
         f"SNAKEMAKE={recorder} snakemake", f"UBENCH={recorder} ubench", f"PY={sys.executable}"],
        cwd=folder, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])})


@pytest.mark.slow
def test_demo_keeps_the_lock_of_a_live_snakemake_and_removes_a_dead_ones(tmp_path):
    log = tmp_path / "calls.log"
    plain = _start_plain_snakemake(tmp_path)
    try:
        assert snakemake_lock.live_snakemake(tmp_path) == [plain.pid]
        assert plain.pid not in snakemake_lock.live_snakemake(REPO)  # another folder
        demo = _demo_run(tmp_path, log)
        assert demo.returncode != 0
        assert f"Snakemake is running here (pid {plain.pid})" in demo.stderr
        assert log.read_text().splitlines() == ["ubench config check"]  # neither unlocked nor ran
        assert list((tmp_path / ".snakemake" / "locks").glob("*.lock")), "the live run's lock was removed"
    finally:
        _kill(plain)
    assert list((tmp_path / ".snakemake" / "locks").glob("*.lock")), "a killed snakemake leaves its lock"
    log.unlink()
    demo = _demo_run(tmp_path, log)
    assert demo.returncode == 0, demo.stderr
    assert log.read_text().splitlines() == ["ubench config check", "snakemake --unlock", "snakemake --cores 2"]


def test_a_snakemake_working_elsewhere_does_not_count(tmp_path):
    assert snakemake_lock.is_snakemake(["/venv/bin/python", "/venv/bin/snakemake", "--cores", "2"])
    assert snakemake_lock.is_snakemake(["python3", "-m", "snakemake"])
    assert not snakemake_lock.is_snakemake(["ubench", "evaluate", "--model", "snakemake"])
    here = tmp_path.resolve()
    assert snakemake_lock.working_folder(["snakemake", "--directory", "runs"], str(here)) == here / "runs"
    assert snakemake_lock.working_folder(["snakemake", "-d", str(here / "x")], "/") == here / "x"
    assert snakemake_lock.working_folder(["snakemake", "--cores", "2"], str(here)) == here


@pytest.mark.slow
def test_demo_checks_the_config_before_snakemake_reads_it(tmp_path):
    """Snakemake reads --configfile before the Snakefile and names no line for a YAML syntax error:
    `make demo CONFIGFILE=...` runs `ubench config check` first, which does."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("models:\n  a: {base: x\nexperiments: []\n", encoding="utf-8")
    log = tmp_path / "calls.log"
    recorder = f"{sys.executable} -c \"{RECORDER}\" {log}"
    make = shutil.which("make") or pytest.skip("make is not installed")
    run = subprocess.run(
        [make, "--no-print-directory", "-f", str(REPO / "Makefile"), "demo-run", f"CONFIGFILE={broken}",
         f"SNAKEMAKE={recorder} snakemake", f"UBENCH={SNAKEMAKE.with_name('ubench')}", f"PY={sys.executable}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])})
    assert run.returncode != 0
    assert f"{broken}:3:" in run.stderr and "YAML syntax error" in run.stderr
    assert not log.exists(), "snakemake ran on a config that does not parse"
