"""Start-up of `ubench`: `--help` and config errors must answer without importing torch/transformers.

Each case runs `ubench ARGS` in a fresh interpreter (best of 5 wall times) and records the exit
status and whether torch / transformers were in sys.modules when the command returned (the probe
below). Saves benchmarks/results/startup.json and startup.png.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results"
REPEATS = 5
HEAVY = ("torch", "transformers")

# Runs workflows.cli.main in-process and reports, on its last stdout line, the exit status and the
# heavy modules loaded at the moment the command returned (argparse's --help exits via SystemExit).
PROBE = """
import json, sys
from workflows import cli
try:
    code = cli.main(json.loads(sys.argv[1]))
except SystemExit as stop:
    code = stop.code if isinstance(stop.code, int) else 1
print("\\nPROBE " + json.dumps({"rc": code, "heavy": [m for m in %r if m in sys.modules]}))
""" % (HEAVY,)

EXPERIMENT = ("experiments:\n  - {benchmark: %s, splits: [forget10], models: [tiny-llama], "
              "objectives: [%s], rectifiers: [%s]}\n")


def cases(scratch: Path) -> dict[str, list[str]]:
    """name -> ubench arguments; every config case but `config show (default)` is an error."""
    files = {
        "yaml_syntax": "experiments:\n  - {benchmark: tofu-tiny, splits: [forget10\n",
        "unknown_key": EXPERIMENT.replace("objectives:", "objective:") % ("tofu-tiny", "ga", "none"),
        "unknown_benchmark": EXPERIMENT % ("tofu-tinny", "ga", "none"),
        "unknown_objective": EXPERIMENT % ("tofu-tiny", "gaa", "none"),
        "unknown_rectifier": EXPERIMENT % ("tofu-tiny", "ga", "sagoo"),
        "unknown_analyzer": EXPERIMENT.replace("}\n", ", hyperparameters: {analyzers: [geffekt]}}\n")
        % ("tofu-tiny", "ga", "none"),
        "idle_override": EXPERIMENT.replace("}\n", ", overrides: [{when: {rectifier: gruu}, set: {lr: 0.1}}]}\n")
        % ("tofu-tiny", "ga", "none"),
    }
    found = {"--help": ["--help"], "grid --help": ["grid", "--help"]}
    for name, text in files.items():
        path = scratch / f"{name}.yaml"
        path.write_text(text)
        command = "grid" if name == "yaml_syntax" else "config"
        found[f"{command} {name}"] = ([command, "--configfile", str(path)] if command == "grid"
                                      else ["config", "check", "--configfile", str(path)])
    found["config show (default)"] = ["config", "show"]
    return found


def probe(argv: list[str]) -> dict:
    """Exit status, heavy modules at return, stderr and wall seconds of one fresh `ubench argv`."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], cwd=REPO, capture_output=True,
                            text=True, check=False, env={**_env(), "PYTHONPATH": str(REPO)})
    seconds = time.perf_counter() - start
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("PROBE ")]
    if not line:
        raise RuntimeError(f"ubench {' '.join(argv)} crashed:\n{result.stderr[-2000:]}")
    return {**json.loads(line[-1][len("PROBE "):]), "stderr": result.stderr, "seconds": seconds}


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "UBENCH_DEBUG"}


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, argv in cases(Path(scratch)).items():
            runs = [probe(argv) for _ in range(REPEATS)]
            first = runs[0]
            rows.append({"case": name, "argv": argv, "exit": first["rc"], "heavy_imported": first["heavy"],
                         "best_seconds": round(min(r["seconds"] for r in runs), 3),
                         "message": first["stderr"].strip().splitlines()[0] if first["stderr"].strip() else ""})
            print(f"{name:>28}: {rows[-1]['best_seconds']:5.2f} s  exit {first['rc']}  "
                  f"heavy imported: {', '.join(first['heavy']) or 'none'}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "startup.json").write_text(json.dumps(rows, indent=2) + "\n")
    _plot(rows)
    errors_light = all(not r["heavy_imported"] for r in rows if r["case"] != "config show (default)")
    print("help and config errors without torch/transformers:", "ok" if errors_light else "NO")
    return 0 if errors_light else 1


def _plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.8))
    colours = ["#C44E52" if r["heavy_imported"] else "#4C72B0" for r in rows]
    ax.barh([r["case"] for r in rows], [r["best_seconds"] for r in rows], color=colours)
    ax.set_xlabel(f"seconds, fresh process (best of {REPEATS}); red: torch imported")
    ax.set_title("ubench start-up: --help and config errors")
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "startup.png", dpi=120)
    print(f"saved {OUT / 'startup.png'}")


if __name__ == "__main__":
    sys.exit(main())
