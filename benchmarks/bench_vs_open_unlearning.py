"""Our `ubench evaluate` against open-unlearning's TOFU evaluator on the same work: TOFU forget10 on
the real files, the same tiny Llama, OU's default metric set, greedy answers of up to 200 tokens.

Two models: the randomly initialised tiny Llama (no answer stops before 200 tokens) and one
fine-tuned for 2 epochs on `full` with the tofu-tiny recipe (answers stop at their own EOS). Each
evaluator runs REPEATS times per model, alternating, each in a fresh process (start-up included);
the fastest wall time of each counts. The shared metrics are checked equal, so the work is the same.

Needs OU set up by benchmarks/open_unlearning/setup.sh (OU_HOME, default
benchmarks/scratch/open-unlearning) and ../shared/data/tofu; skips with the reason otherwise.
Prints and saves benchmarks/results/vs_open_unlearning.json.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from common import atomic  # noqa: E402

RESULTS = HERE / "results"
SHARED_TOFU = REPO.parent / "shared" / "data" / "tofu"
OU_HOME = Path(os.environ.get("OU_HOME", HERE / "scratch" / "open-unlearning"))
REPEATS = 2
# (our metric, OU's summary key): what both evaluators compute
SHARED_METRICS = [("forget_prob", "forget_Q_A_Prob"), ("forget_truth_ratio", "forget_truth_ratio"),
                  ("forget_rouge", "forget_Q_A_ROUGE"), ("model_utility", "model_utility")]


def timed(command: list[str], log: Path, env: dict | None = None) -> float:
    start = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    if code:
        raise SystemExit(f"{command[0]} failed (exit {code}); see {log}")
    return time.perf_counter() - start


def ours(model: Path, out: Path) -> tuple[float, dict]:
    ubench = str(Path(sys.executable).parent / "ubench")
    seconds = timed([ubench, "evaluate", "--model", str(model), "--benchmark", "tofu", "--data", str(SHARED_TOFU),
                     "--split", "forget10", "--out", str(out), "--quiet"], out.with_suffix(".log"))
    return seconds, json.loads((out / "metrics.json").read_text())["metrics"]


def open_unlearning(model: Path, out: Path) -> tuple[float, dict]:
    env = {**os.environ, "OU_HOME": str(OU_HOME)}
    seconds = timed(["bash", str(HERE / "open_unlearning" / "run.sh"), str(model), str(SHARED_TOFU), str(out)],
                    out.with_suffix(".log"), env)
    return seconds, json.loads((out / "TOFU_SUMMARY.json").read_text())


def compare(model: Path, label: str, scratch: Path) -> dict:
    walls = {"ours": [], "open_unlearning": []}
    for repeat in range(REPEATS):
        wall, our_metrics = ours(model, scratch / f"ours-{repeat}")
        walls["ours"].append(round(wall, 1))
        wall, ou_metrics = open_unlearning(model, scratch / f"ou-{repeat}")
        walls["open_unlearning"].append(round(wall, 1))
    shared = {mine: {"ours": our_metrics[mine], "open_unlearning": ou_metrics[theirs]}
              for mine, theirs in SHARED_METRICS}
    same = all(abs(v["ours"] - v["open_unlearning"]) <= 1e-4 * max(1.0, abs(v["open_unlearning"]))
               for v in shared.values())
    best_ours, best_ou = min(walls["ours"]), min(walls["open_unlearning"])
    return {"model": label, "wall_seconds": walls, "best_ours": best_ours, "best_open_unlearning": best_ou,
            "speedup": round(best_ou / best_ours, 2), "shared_metrics": shared, "shared_metrics_equal": same}


def main() -> int:
    if not (SHARED_TOFU / "full.json").is_file():
        print(f"skipped: the real TOFU files are not at {SHARED_TOFU}")
        return 0
    if not (OU_HOME / "venv" / "bin" / "python").exists():
        print(f"skipped: no open-unlearning in {OU_HOME}; run benchmarks/open_unlearning/setup.sh first")
        return 0
    import tiny_tofu_models
    from evaluation.benchmarks.tofu import data as tofu

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        random_model = tiny_tofu_models.random_model(tofu.official(SHARED_TOFU), scratch / "random")
        trained = tiny_tofu_models.finetuned_model("tofu", SHARED_TOFU, scratch / "trained")
        runs = []
        for folder, label in ((trained, tiny_tofu_models.FINETUNED), (random_model, tiny_tofu_models.RANDOM)):
            outputs = scratch / "runs" / folder.name
            outputs.mkdir(parents=True)
            runs.append(compare(folder, label, outputs))
    figures = {"data": "tofu forget10 (real, ../shared/data)", "cores": os.cpu_count(),
               "open_unlearning_commit": (OU_HOME / "COMMIT").read_text().strip() if (OU_HOME / "COMMIT").is_file()
               else "unknown", "repeats": REPEATS, "runs": runs}
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic.write_json(RESULTS / "vs_open_unlearning.json", figures)
    return 0 if all(r["shared_metrics_equal"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
