"""What trajectory evaluation costs on tofu-tiny: evaluate_every 10 at max_steps 30, one thread.

Fine-tunes the tofu-tiny target and retain model (the tofu-tiny preset), evaluates the retain model,
unlearns the target with GradDiff for 30 steps writing snapshots at 10 and 20 (`ubench unlearn`),
then runs `ubench evaluate-run` twice: without snapshots (today's evaluation) and with them. Reports
the wall time of the final (scope all) evaluation, each intermediate point (scope trajectory) and the
extra time per run, into benchmarks/results/trajectory_eval.json.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
OUT = REPO / "benchmarks" / "results" / "trajectory_eval.json"
STEPS, EVERY, REPEATS = 30, 10, 3
HYPER = {"lr": 1e-4, "max_steps": STEPS, "batch_size": 8, "max_length": 64, "scheduler": "constant",
         "evaluate_every": EVERY}


def main() -> None:
    from evaluation import evaluate, finetune
    from evaluation.benchmarks.tofu import tiny as tofu_tiny
    from workflows import commands

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = tofu_tiny.write(root / "data")
        target = finetune.run("tofu-tiny", str(data), "full", "tiny-llama", root / "target", progress=False)["out"]
        retain = finetune.run("tofu-tiny", str(data), "retain90", "tiny-llama", root / "retain", progress=False)["out"]
        evaluate.run(evaluate.EvaluationSpec(
            retain, "tofu-tiny", str(data), "forget10", None, root / "eval-retain",
            identity={"role": "retain", "method": "retain"}, progress=False))
        spec = {"benchmark": "tofu-tiny", "split": "forget10", "model": "tiny-llama", "objective": "graddiff",
                "rectifier": "none", "parametrization": "full", "seed": 0, "hyperparameters": HYPER}
        run = root / "run"
        commands.unlearn(spec, str(data), str(target), run / "model", run / "train_log.jsonl",
                         run / "train_result.json", threads=1, progress=False)
        plain_spec = {**spec, "hyperparameters": {k: v for k, v in HYPER.items() if k != "evaluate_every"}}
        timings = {}
        for label, which in (("final only", plain_spec), ("with trajectory", spec)):
            start = time.perf_counter()
            document = commands.evaluate_run(which, str(run / "model"), run / "train_result.json", str(data),
                                             root / label.replace(" ", "-"), retain_reference=str(root / "eval-retain"),
                                             progress=False)
            timings[label] = {"wall_seconds": round(time.perf_counter() - start, 2),
                              "eval_seconds": document["cost"]["eval_seconds"],
                              "trajectory_seconds": document["cost"].get("trajectory_seconds")}
        # per point, scope trajectory vs scope all on the same loaded model (best of REPEATS each)
        from evaluation import benchmarks, models
        from evaluation.benchmarks.base import EvalContext
        from methods import snapshots

        bench = benchmarks.get("tofu-tiny")
        model, tokenizer, fmt = models.load_model(str(run / "model"), dtype="float32")
        state, extras = snapshots.list_snapshots(run / "snapshots")[0].load()
        snapshots.apply(model, state, extras)
        reference = bench.load_reference(str(root / "eval-retain"))
        per_point = {}
        for scope in ("trajectory", "all"):
            context = EvalContext(model, tokenizer, fmt, bench.open(str(data)), "forget10", bench.default_variant,
                                  reference, progress=False, scope=scope)
            seconds = []
            for _ in range(REPEATS):
                start = time.perf_counter()
                output = bench.evaluate(context)
                seconds.append(time.perf_counter() - start)
            per_point[scope] = {"best_seconds": round(min(seconds), 3), "metrics": len(output.result["metrics"]),
                                "sequences_scored": output.cost.get("sequences_scored"),
                                "prompts_generated": output.cost.get("prompts_generated"),
                                "tokens_generated": output.cost.get("tokens_generated")}
        points = len(document["trajectory"]["points"]) - 1
        extra = timings["with trajectory"]["wall_seconds"] - timings["final only"]["wall_seconds"]
        result = {"benchmark": "tofu-tiny/forget10", "max_steps": STEPS, "evaluate_every": EVERY,
                  "intermediate_points": points, "threads": 1, "timings": timings,
                  "extra_seconds_per_run": round(extra, 2),
                  "seconds_per_intermediate_point": round(timings["with trajectory"]["trajectory_seconds"] / points, 2),
                  "final_eval_seconds": timings["final only"]["eval_seconds"],
                  "one_point_by_scope": per_point,
                  "metrics_per_intermediate_point": sorted(document["trajectory"]["points"][0]["metrics"])}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
