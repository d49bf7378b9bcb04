"""The whole DAG on a seconds-scale model and data: every result lands, a rerun does nothing, and a
missing result is redone alone."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from common import contract
from evaluation import benchmarks, models
from evaluation.benchmarks.tofu import tiny as tofu_tiny
from evaluation.benchmarks.tofu.data import vocabulary_texts

from tests.workflows.conftest import REPO, job_counts, snakemake

RUNS = ("graddiff+none", "graddiff+pcgrad")
STEPS = 3


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    # A tiny random target (skips target fine-tuning); the retain model is fine-tuned for one epoch.
    data_dir = tofu_tiny.write(root / "tofu-tiny-for-target")
    target = models.build_tiny_llama(vocabulary_texts(benchmarks.get("tofu-tiny").open(data_dir)),
                                     root / "target", hidden_size=64, intermediate_size=128,
                                     num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2)
    config = {
        "threads": 1,
        "evaluation": {"batch_size": 64},
        "models": {"tiny-llama": {"base": "tiny-llama", "target": str(target), "retain": "finetune",
                                  "finetune": {"preset": "tofu-tiny", "epochs": 1}}},
        "experiments": [{
            "benchmark": "tofu-tiny", "splits": ["forget10"], "models": ["tiny-llama"],
            "objectives": ["graddiff"], "rectifiers": ["none", "pcgrad"],
            "hyperparameters": {"lr": 1e-3, "max_steps": STEPS, "batch_size": 8, "max_length": 64,
                                "scheduler": "constant"},
            # trajectories: snapshots at steps 1, 2 (deleted once evaluated) and 2 (kept)
            "overrides": [{"when": {"rectifier": "none"}, "set": {"evaluate_every": 1}},
                          {"when": {"rectifier": "pcgrad"}, "set": {"evaluate_every": 2, "keep_checkpoints": True}}],
        }, {  # a LoRA trajectory: snapshots are merged into the target's weights at evaluation
            "benchmark": "tofu-tiny", "splits": ["forget10"], "models": ["tiny-llama"],
            "objectives": ["graddiff"], "rectifiers": ["none"], "parametrizations": ["lora"],
            "hyperparameters": {"lr": 1e-3, "max_steps": STEPS, "batch_size": 8, "max_length": 64,
                                "scheduler": "constant", "evaluate_every": 2,
                                "parametrization_args": {"rank": 2}},
        }],
    }
    (root / "tiny.yaml").write_text(yaml.safe_dump(config))
    run = snakemake("--cores", "2", "--configfile", str(root / "tiny.yaml"), "--directory", str(root),
                    "--workflow-profile", str(REPO / "profiles" / "default"), timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return root


@pytest.mark.slow
def test_every_result_is_written_and_valid(finished):
    base = finished / "results" / "tofu-tiny" / "forget10" / "tiny-llama"
    for method in RUNS:
        run = base / method / "seed0"
        document = contract.read_metrics(run / "metrics.json")
        objective, rectifier = method.split("+")
        assert document["identity"]["method"] == objective
        assert document["identity"]["rectifier"] == rectifier
        assert document["identity"]["hyperparameters"]["max_steps"] == STEPS
        assert document["status"]["state"] == "ok"
        assert document["cost"]["optimizer_steps"] == STEPS
        assert document["metrics"]["forget_quality"] is not None  # read the retain reference
        assert len((run / "train_log.jsonl").read_text().splitlines()) == STEPS
        assert len(pd.read_parquet(run / "per_item.parquet")) > 0
    for role in ("target", "retain"):
        assert "trajectory" not in contract.read_metrics(base / "reference" / role / "metrics.json")
        document = contract.read_metrics(base / "reference" / role / "metrics.json")
        assert document["identity"]["role"] == role
    table = pd.read_csv(finished / "site" / "leaderboard.csv")
    assert {"graddiff"} <= set(table["method"])
    assert not list(finished.rglob("*.tmp")), "a temporary file survived"


@pytest.mark.slow
def test_trajectories_are_evaluated_and_snapshots_deleted_unless_kept(finished):
    base = finished / "results" / "tofu-tiny" / "forget10" / "tiny-llama"
    work = finished / "work" / "runs" / "tofu-tiny" / "forget10" / "tiny-llama"
    for method, steps in (("graddiff+none", [1, 2, 3]), ("graddiff+pcgrad", [2, 3]), ("graddiff+none+lora", [2, 3])):
        document = contract.read_metrics(base / method / "seed0" / "metrics.json")
        block = document["trajectory"]
        assert [p["step"] for p in block["points"]] == steps
        assert block["points"][-1] == {"step": STEPS, "metrics": document["metrics"], "final": True}
        for point in block["points"][:-1]:
            assert {"forget_quality", "model_utility", "forget_prob"} <= set(point["metrics"])
            assert "final" not in point
        table = pd.read_parquet(base / method / "seed0" / contract.TRAJECTORY_FILE)
        assert table["step"].tolist() == steps and table["final"].tolist() == [False] * (len(steps) - 1) + [True]
        assert table["model_utility"].tolist() == pytest.approx([p["metrics"]["model_utility"] for p in block["points"]])
    for method in ("graddiff+none", "graddiff+none+lora"):  # temp(): deleted once evaluated
        assert not (work / method / "seed0" / "snapshots").exists()
    kept = work / "graddiff+pcgrad" / "seed0" / "snapshots"
    assert sorted(p.name for p in kept.iterdir() if not p.name.startswith(".")) == ["step-0000002"]


@pytest.mark.slow
def test_rerun_does_nothing(finished):
    result = snakemake("-n", "--cores", "2", "--configfile", str(finished / "tiny.yaml"),
                       "--directory", str(finished), "--workflow-profile", str(REPO / "profiles" / "default"))
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.slow
def test_a_missing_result_is_redone_alone(finished):
    run = finished / "results" / "tofu-tiny" / "forget10" / "tiny-llama" / "graddiff+pcgrad" / "seed0"
    (run / "metrics.json").unlink()
    result = snakemake("-n", "--cores", "2", "--configfile", str(finished / "tiny.yaml"),
                       "--directory", str(finished), "--workflow-profile", str(REPO / "profiles" / "default"))
    assert result.returncode == 0, result.stderr[-3000:]
    # its snapshots were kept (keep_checkpoints), so only its evaluation reruns
    assert job_counts(result.stdout + result.stderr) == {"evaluate_run_trajectory": 1, "leaderboard": 1, "all": 1}

