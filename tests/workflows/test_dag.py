"""Dry-run DAGs: the default grid and every paper grid plan the jobs we expect, and lint is clean."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from workflows import grid

from tests.workflows.conftest import REPO, job_counts, snakemake

# Hand-counted plans (rule -> jobs). unlearn = evaluate_run = number of runs; evaluate_reference =
# target (+ retain) per (split, model); finetune = target on full and/or retain on retainXX.
EXPECTED = {
    # the default grid evaluates trajectories (evaluate_every), hence the snapshot rule variants
    None: {"generate_data": 4, "finetune": 6, "evaluate_reference": 6, "unlearn_snapshots": 47,
           "evaluate_run_trajectory": 47, "evaluate_attack": 79, "evaluate_attack_reference": 10,
           "leaderboard": 1, "all": 1},
    # attacks (each applied in its evaluation job: no `attack` jobs): tofu-tiny 16 runs x (quantize/int4,
    # relearn/forget-split, prompt/prefix) and its target + retain the same; quantize/int4 on wmdp-tiny's
    # 10 runs, muse-tiny's 12 and rwku-tiny's 9, and on their references (target; muse-tiny + retain)  # tofu-tiny 4 x 4; wmdp-tiny 1 + 3 x 3 and rwku-tiny 3 x 3 (target only); muse-tiny 4 x 3
    "gru_tofu.yaml": {"finetune": 6, "evaluate_reference": 12, "unlearn": 84, "evaluate_run": 84,
                      "leaderboard": 1, "all": 1},       # 3 x 2 x (5 x 2 + 3 +ce/+KL branches + 1 extra)
    "geffect_tofu.yaml": {"finetune": 6, "evaluate_reference": 12, "unlearn": 42, "evaluate_run": 42,
                          "leaderboard": 1, "all": 1},                           # 3 x 2 x 7
    "grun_tofu.yaml": {"finetune": 4, "evaluate_reference": 4, "unlearn": 6, "evaluate_run": 6,
                       "leaderboard": 1, "all": 1},                              # 1 x 2 x 3
    "ou_tofu.yaml": {"evaluate_reference": 12, "unlearn": 27, "evaluate_run": 27, "leaderboard": 1,
                     "all": 1},                                                  # 3 x 2 x 4 + PDU 3 x 1, Hub refs
    "ou_muse.yaml": {"evaluate_reference": 2, "unlearn": 4, "evaluate_run": 4, "leaderboard": 1, "all": 1},
    "sago_wmdp.yaml": {"evaluate_reference": 2, "unlearn": 24, "evaluate_run": 24, "leaderboard": 1,
                       "all": 1},                                                # 2 x (1 + 3 x 3 + 2)
    "sago_rwku.yaml": {"evaluate_reference": 1, "unlearn": 10, "evaluate_run": 10, "leaderboard": 1,
                       "all": 1},                                                # 1 + 3 x 3
}
PAPER_CONFIGS = sorted(p.name for p in (REPO / "config" / "paper").glob("*.yaml"))


def _needs_unregistered(config_name: str | None) -> str | None:
    if config_name is None:
        return None
    config = grid.load_config(REPO / "config" / "paper" / config_name)
    try:
        grid.build(config)
    except grid.GridError as error:
        if "unknown" in str(error):
            return str(error)
        raise
    return None


def test_every_paper_config_has_an_expected_plan():
    assert set(PAPER_CONFIGS) == {name for name in EXPECTED if name}


def _dry_run(config_name: str | None, directory: Path):
    args = ["-n", "--cores", "1", "--directory", str(directory),
            "--workflow-profile", str(REPO / "profiles" / "default")]
    if config_name:
        args += ["--configfile", str(REPO / "config" / "paper" / config_name)]
    return snakemake(*args)


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory):
    """All dry runs at once (each is ~3 s of Snakemake start-up, mostly waiting on imports)."""
    names = [None] + PAPER_CONFIGS
    directories = [tmp_path_factory.mktemp("dag") for _ in names]  # not thread-safe: make them first
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(names, pool.map(_dry_run, names, directories)))


@pytest.mark.parametrize("config_name", [None] + PAPER_CONFIGS)
def test_dry_run_plans_the_expected_jobs(config_name, dry_runs):
    missing = _needs_unregistered(config_name)
    if missing:
        pytest.skip(f"engine does not register a name this grid uses yet: {missing}")
    result = dry_runs[config_name]
    assert result.returncode == 0, result.stderr[-3000:]
    assert job_counts(result.stdout + result.stderr) == EXPECTED[config_name]


@pytest.mark.parametrize("config_name", [None] + PAPER_CONFIGS)
def test_grid_summary_agrees_with_snakemake_plan(config_name):
    if _needs_unregistered(config_name):
        pytest.skip("engine does not register a name this grid uses yet")
    paths = [REPO / "config" / "paper" / config_name] if config_name else []
    counts = {k: v for k, v in grid.summary(grid.build(grid.load_config(*paths))).items() if v}
    assert counts == {k: v for k, v in EXPECTED[config_name].items() if k != "all"}


def test_lint_is_clean():
    result = snakemake("--lint", "--workflow-profile", str(REPO / "profiles" / "default"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Congratulations" in result.stdout + result.stderr


def test_a_wrong_key_names_itself(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"experiments": [{
        "benchmark": "tofu-tiny", "splits": ["forget10"], "models": ["tiny-llama"],
        "objectives": ["ga"], "rectifiers": ["none"], "hyperparameter": {"lr": 1e-3}}]}))
    result = snakemake("-n", "--cores", "1", "--configfile", str(bad), "--directory", str(tmp_path))
    assert result.returncode != 0
    assert "hyperparameter" in result.stdout + result.stderr


@pytest.mark.parametrize("change, named", [
    (lambda c: c["experiments"][0].update(benchmark="tofu-huge"), "tofu-huge"),
    (lambda c: c["experiments"][0]["hyperparameters"].update(lr=-1), "experiments/0/hyperparameters/lr"),
    (lambda c: c["experiments"][0]["hyperparameters"].update(learning_rate=1e-3), "learning_rate"),
    (lambda c: c["models"]["tiny-llama"].update(launcher={"gpu": 1}), "'gpu'"),
    (lambda c: c["experiments"][0].update(models=["no-such-model"]), "no-such-model"),
    (lambda c: c["experiments"][0].update(objectives=["ga", "ga"]), "non-unique"),
])
def test_a_wrong_value_names_itself(change, named):
    config = grid.load_config()
    change(config)
    with pytest.raises(grid.GridError) as error:
        grid.build(config)
    assert named in str(error.value)


def test_unknown_method_lists_the_registered_ones():
    pytest.importorskip("methods.registry")
    config = grid.load_config()
    config["experiments"][0]["rectifiers"] = ["none", "pcgrad-typo"]
    with pytest.raises(grid.GridError, match="unknown rectifier 'pcgrad-typo'; registered: .*gru"):
        grid.build(config)


def test_hub_target_skips_finetuning(tmp_path):
    """A config naming an already fine-tuned target plans no finetune job for it."""
    config = grid.load_config()
    config["models"]["tiny-llama"]["target"] = "locuslab/tofu_ft_phi-1.5"
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump({"models": config["models"]}))
    result = snakemake("-n", "--cores", "1", "--configfile", str(path), "--directory", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout + result.stderr)
    assert counts["finetune"] == 2  # only the retain models (tofu-tiny retain90, muse-tiny retain)
    assert "locuslab/tofu_ft_phi-1.5" in result.stdout


def test_slurm_profile_plans_the_same_dag(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]' to check the profile")
    result = snakemake("-n", "--directory", str(tmp_path), "--workflow-profile", str(REPO / "profiles" / "slurm"),
                       "--configfile", str(REPO / "config" / "paper" / "gru_tofu.yaml"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert job_counts(result.stdout + result.stderr) == EXPECTED["gru_tofu.yaml"]
