"""A diverged run with `evaluate_every` lands as a recorded `diverged` row through the Snakemake
rules: the trajectory rule's declared outputs all exist (trajectory.parquet holds no points), so
Snakemake keeps the result, a rerun does nothing and the leaderboard is built."""
from __future__ import annotations

import pandas as pd
import pytest
import yaml

from common import contract
from evaluation import benchmarks, models
from evaluation.benchmarks.tofu import tiny as tofu_tiny
from evaluation.benchmarks.tofu.data import vocabulary_texts

from tests.workflows.conftest import REPO, snakemake


@pytest.mark.slow
def test_diverged_trajectory_run_is_recorded_and_does_not_block_the_dag(tmp_path):
    data_dir = tofu_tiny.write(tmp_path / "tofu-tiny-for-target")
    target = models.build_tiny_llama(vocabulary_texts(benchmarks.get("tofu-tiny").open(data_dir)),
                                     tmp_path / "target", hidden_size=32, intermediate_size=64,
                                     num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    config = {
        "threads": 1,
        "evaluation": {"batch_size": 64},
        "models": {"tiny-llama": {"base": "tiny-llama", "target": str(target), "retain": "none"}},
        "experiments": [{
            "benchmark": "tofu-tiny", "splits": ["forget10"], "models": ["tiny-llama"],
            "objectives": ["ga"], "rectifiers": ["none"],
            # an Adam step moves every weight by ~lr: 1e38 overflows the next forward, a non-finite loss
            "hyperparameters": {"lr": 1e38, "max_grad_norm": None, "max_steps": 4, "batch_size": 8,
                                "max_length": 64, "scheduler": "constant", "evaluate_every": 1},
        }],
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    common_args = ("--cores", "2", "--configfile", str(tmp_path / "tiny.yaml"), "--directory", str(tmp_path),
                   "--workflow-profile", str(REPO / "profiles" / "default"))
    run = snakemake(*common_args, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    seed = tmp_path / "results" / "tofu-tiny" / "forget10" / "tiny-llama" / "ga+none" / "seed0"
    document = contract.read_metrics(seed / "metrics.json")
    assert document["status"]["state"] == "diverged" and document["status"]["step"] is not None
    assert "trajectory" not in document
    table = pd.read_parquet(seed / contract.TRAJECTORY_FILE)
    assert len(table) == 0 and list(table.columns)[:2] == ["step", "final"]
    assert (tmp_path / "site" / "leaderboard.csv").is_file()
    rerun = snakemake("-n", *common_args)
    assert rerun.returncode == 0 and "Nothing to be done" in rerun.stdout + rerun.stderr, rerun.stderr[-3000:]
