"""`ubench` glue commands without training: run-spec translation, diverged runs, help, grid."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from common import contract
from workflows import commands
from workflows.cli import build_parser

SPEC = {"benchmark": "tofu-tiny", "split": "forget10", "model": "tiny-llama", "objective": "npo",
        "rectifier": "gru", "parametrization": "full", "seed": 3, "prompt_format": None,
        "hyperparameters": {"lr": 1e-3, "max_steps": 5, "max_length": 64, "adam_betas": [0.9, 0.95],
                            "objective_args": {"beta": 0.2}, "analyzers": []}}


def test_spec_becomes_train_config():
    config = commands.train_config_from_spec(SPEC)
    assert (config.objective, config.rectifier, config.seed, config.max_steps) == ("npo", "gru", 3, 5)
    assert config.objective_args == {"beta": 0.2} and config.adam_betas == (0.9, 0.95)


def test_unknown_hyperparameter_is_named():
    spec = {**SPEC, "hyperparameters": {"learning_rate": 1e-3}}
    with pytest.raises(ValueError, match="learning_rate"):
        commands.train_config_from_spec(spec)


def test_diverged_run_is_recorded_not_evaluated(tmp_path):
    train_result = tmp_path / "train_result.json"
    train_result.write_text(json.dumps({
        "status": "diverged", "diverged_step": 4, "reason": "non-finite loss inf at optimizer step 4",
        "cost": {"train_seconds": 1.5, "optimizer_steps": 3, "backward_passes": 6}}))
    out = tmp_path / "run"
    commands.evaluate_run(SPEC, str(tmp_path / "no-model"), train_result, None, out)
    document = contract.read_metrics(out / "metrics.json")
    assert document["status"] == {"state": "diverged", "step": 4, "reason": "non-finite loss inf at optimizer step 4"}
    assert document["metrics"] == {} and document["cost"]["optimizer_steps"] == 3
    assert document["identity"]["method"] == "npo" and document["identity"]["seed"] == 3
    assert len(pd.read_parquet(out / "per_item.parquet")) == 0
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "per_item.parquet"]


def test_diverged_trajectory_run_writes_every_declared_output(tmp_path):
    """The trajectory rule declares trajectory.parquet: a diverged run writes it without points (no
    snapshots were kept), else Snakemake deletes the diverged row as incomplete and every rerun fails."""
    train_result = tmp_path / "train_result.json"
    train_result.write_text(json.dumps({"status": "diverged", "diverged_step": 2, "reason": "non-finite loss",
                                        "cost": {"optimizer_steps": 1}}))
    spec = {**SPEC, "hyperparameters": {**SPEC["hyperparameters"], "evaluate_every": 1}}
    out = tmp_path / "run"
    commands.evaluate_run(spec, str(tmp_path / "no-model"), train_result, None, out)
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "per_item.parquet", contract.TRAJECTORY_FILE]
    table = pd.read_parquet(out / contract.TRAJECTORY_FILE)
    assert len(table) == 0 and list(table.columns) == ["step", "final"]
    assert "trajectory" not in contract.read_metrics(out / "metrics.json")


@pytest.mark.parametrize("command", [["unlearn"], ["evaluate-run"], ["grid"], ["config", "show"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(command + ["--help"])
    assert exit_.value.code == 0
    assert "usage: ubench" in capsys.readouterr().out


def test_grid_lists_the_default_runs():
    out = subprocess.run([sys.executable, "-m", "workflows.cli", "grid", "--json"], capture_output=True,
                         text=True, check=True).stdout
    rows = json.loads(out)
    assert len(rows) == 47  # tofu-tiny 4 x 4 + wmdp-tiny (RMU + 3 x 3) + muse-tiny 4 x 3 + rwku-tiny 3 x 3
    assert {r["method_dir"] for r in rows} >= {"ga+none", "simnpo+sago", "rmu+none"}
    assert {r["benchmark"] for r in rows} == {"tofu-tiny", "wmdp-tiny", "muse-tiny", "rwku-tiny"}
    assert rows[0]["results"].startswith("results/tofu-tiny/forget10/tiny-llama/")


def test_run_spec_is_read_once_and_names_a_missing_key():
    from workflows.run_spec import RunSpec

    run = RunSpec.from_json(json.dumps(SPEC))
    assert (run.benchmark, run.parametrization, run.seed, run.dtype, run.raw) == ("tofu-tiny", "full", 3, "float32", SPEC)
    assert run.max_length(128) == 64 and run.idk_draw == "epoch" and run.evaluate_every is None
    with pytest.raises(ValueError, match="lacks 'split'"):
        RunSpec.from_json({k: v for k, v in SPEC.items() if k != "split"})
    with pytest.raises(ValueError, match="lacks 'split'"):
        commands.train_config_from_spec({k: v for k, v in SPEC.items() if k != "split"})
