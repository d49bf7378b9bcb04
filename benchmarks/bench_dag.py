"""How long `snakemake -n` takes to plan each grid (acceptance: the largest paper grid in <= 15 s).

Times a cold `snakemake -n` (process start-up, config validation, grid expansion, DAG) per config,
best of 3, and saves a bar chart to benchmarks/results/dag_planning.png plus the numbers as JSON.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
LIMIT_SECONDS = 15.0
REPEATS = 3


def plan(configfile: Path | None, directory: Path) -> tuple[float, int]:
    command = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "-n", "--cores", "1",
               "--directory", str(directory), "--workflow-profile", str(REPO / "profiles" / "default")]
    if configfile:
        command += ["--configfile", str(configfile)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"snakemake -n failed for {configfile}:\n{result.stderr[-2000:]}")
    jobs = int(re.search(r"^total\s+(\d+)", result.stdout + result.stderr, re.M).group(1))
    return seconds, jobs


def main() -> int:
    configs = [None] + sorted((REPO / "config" / "paper").glob("*.yaml"))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for config in configs:
            name = "default" if config is None else config.stem
            try:
                timings, jobs = zip(*(plan(config, Path(scratch)) for _ in range(REPEATS)))
            except RuntimeError as error:  # e.g. a grid naming a method the engine does not register yet
                print(f"{name:>14}: skipped ({str(error).splitlines()[-1]})")
                continue
            rows.append({"config": name, "jobs": jobs[0], "best_seconds": round(min(timings), 3),
                         "all_seconds": [round(t, 3) for t in timings]})
            print(f"{name:>14}: {jobs[0]:4d} jobs planned in {min(timings):5.2f} s (best of {REPEATS})")
    largest = max(rows, key=lambda r: r["jobs"])
    verdict = "ok" if largest["best_seconds"] <= LIMIT_SECONDS else "TOO SLOW"
    print(f"largest grid {largest['config']} ({largest['jobs']} jobs): {largest['best_seconds']:.2f} s "
          f"(limit {LIMIT_SECONDS:.0f} s) {verdict}")

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "dag_planning.json").write_text(json.dumps(rows, indent=2) + "\n")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels = [f"{r['config']}\n{r['jobs']} jobs" for r in rows]
    ax.bar(labels, [r["best_seconds"] for r in rows], color="#4C72B0")
    ax.axhline(LIMIT_SECONDS, color="#C44E52", linestyle="--", label=f"limit {LIMIT_SECONDS:.0f} s")
    ax.set_ylabel("snakemake -n, seconds (best of 3)")
    ax.set_title("DAG planning time per grid")
    ax.tick_params(axis="x", labelsize=7)
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "dag_planning.png", dpi=120)
    print(f"saved {OUT / 'dag_planning.png'}")
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
