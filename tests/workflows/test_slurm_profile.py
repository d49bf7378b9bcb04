"""profiles/slurm (issue 25): every rule the Snakefile can produce has its threads and resources,
threads are the CPUs Slurm reserves, account/partition join the profile without wiping its
defaults, a job no node can run is refused naming the rule and its request, and jobs find `ubench`
without the venv on PATH. The one-node Slurm run itself is .ci/slurm/e2e.sh (CI, root)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from workflows import slurm_fit, slurm_profile

from tests.workflows.conftest import REPO, SNAKEMAKE, snakemake

PROFILE = REPO / "profiles" / "slurm"
E2E_GRID = REPO / ".ci" / "slurm" / "grid.yaml"
RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflows" / "rules").glob("*.smk"))]


def declared_rules() -> set[str]:
    """Every rule the Snakefile and its rule files can declare, conditional variants included."""
    names = set()
    for path in RULE_FILES:
        text = path.read_text()
        names |= set(re.findall(r"^\s*(?:rule|checkpoint)\s+(\w+)\s*:", text, re.M))
        names |= set(re.findall(r"^\s*use rule \w+ as (\w+)", text, re.M))
    return names


@pytest.fixture(scope="module")
def profile():
    return slurm_profile.load(PROFILE)


@pytest.fixture(scope="module")
def e2e_plan(tmp_path_factory):
    """The CI grid's dry run through the shipped profile, threads uncapped as in a Slurm run."""
    result = snakemake("-n", "-p", "--cores", slurm_fit.UNCAPPED_CORES, "--workflow-profile", str(PROFILE),
                       "--configfile", str(E2E_GRID), "--directory", str(tmp_path_factory.mktemp("plan")))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def test_the_e2e_grid_produces_every_declared_rule(e2e_plan, tmp_path):
    # the static list below is complete only if Snakemake itself finds no other rule
    listed = snakemake("--list-rules", "--configfile", str(E2E_GRID), "--directory", str(tmp_path))
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert set(listed.stdout.split()) == declared_rules()
    planned = set(re.findall(r"^(?:local)?rule (\w+):$", e2e_plan, re.M))
    assert planned == declared_rules(), "the CI grid must exercise every rule kind"


def test_every_rule_has_threads_and_resources_in_the_profile(profile):
    rules = declared_rules() - {"all"}
    assert rules - set(profile["set-threads"]) == set(), "rules without set-threads"
    assert rules - set(profile["set-resources"]) == set(), "rules without set-resources"
    assert set(profile["set-threads"]) | set(profile["set-resources"]) <= rules, "entries for no rule"
    for rule in rules:
        assert {"runtime", "mem_mb"} <= set(profile["set-resources"][rule]), rule


def test_cpus_are_never_set_apart_from_threads(profile):
    # cpus_per_task would reserve CPUs the job's {threads} does not use (the old 16-CPU / 1-thread jobs)
    blocks = [profile.get("default-resources", {}), *profile["set-resources"].values()]
    assert not any({"cpus_per_task", "cpus_per_gpu"} & set(block) for block in blocks)


def test_status_by_squeue_and_no_job_arrays(profile):
    assert profile["slurm-status-command"] == "squeue"
    assert not profile.get("slurm-array-jobs")
    text = (PROFILE / "config.yaml").read_text()
    assert "#447" in text, "say why arrays are off (upstream issue)"


def test_every_job_runs_as_many_threads_as_it_reserves(profile, e2e_plan):
    jobs = slurm_fit.parse_plan(e2e_plan, slurm_fit.local_rules())
    assert {job.rule for job in jobs} == declared_rules() - slurm_fit.local_rules()
    commands = dict(re.findall(r"^rule (\w+):$.*?^Shell command: (.*?)$", e2e_plan, re.M | re.S))
    for job in jobs:
        threads = profile["set-threads"][job.rule]
        assert job.threads == threads > 1, job.rule
        assert f"--cpus-per-task={threads}" in slurm_fit.sbatch_request(job), job.rule
        assert f"OMP_NUM_THREADS={threads} " in commands[job.rule], job.rule
        if job.rule.startswith("unlearn"):
            assert f"--threads {threads} " in commands[job.rule], job.rule


def test_local_rules_are_read_from_the_snakefile():
    assert slurm_fit.local_rules() == {"all", "generate_data", "leaderboard", "meta_eval"}


# ---- account and partition without wiping the defaults -------------------------------------------
def test_account_and_partition_join_the_profile_defaults(profile, tmp_path):
    derived = slurm_profile.derive(profile, account="proj-42", partition="gpu")
    assert derived["default-resources"] == {**profile["default-resources"],
                                            "slurm_account": "'proj-42'", "slurm_partition": "'gpu'"}
    assert derived["set-resources"] == profile["set-resources"]
    assert derived["set-threads"] == profile["set-threads"]
    assert {k: v for k, v in derived.items() if not k.startswith(("set-", "default-"))} == \
        {k: v for k, v in profile.items() if not k.startswith(("set-", "default-"))}
    path = slurm_profile.write(derived, tmp_path / "p")
    assert yaml.safe_load(path.read_text()) == derived


def test_account_and_partition_reach_every_job(profile, tmp_path):
    out = tmp_path / "profile"
    assert slurm_profile.main(["--account", "proj-42", "--partition", "gpu", "--out", str(out)]) == 0
    plan = snakemake("-n", "--workflow-profile", str(out), "--configfile", str(E2E_GRID),
                     "--directory", str(tmp_path))
    assert plan.returncode == 0, plan.stderr[-3000:]
    jobs = slurm_fit.parse_plan(plan.stdout + plan.stderr, slurm_fit.local_rules())
    assert jobs
    for job in jobs:
        assert job.resources["slurm_account"] == "proj-42" and job.resources["slurm_partition"] == "gpu"
        assert job.resources["mem_mb"] == profile["set-resources"][job.rule]["mem_mb"], job.rule


def test_caps_lower_every_request_for_a_small_node(profile):
    derived = slurm_profile.derive(profile, max_threads=1, max_mem_mb=2000, max_runtime=30)
    assert set(derived["set-threads"].values()) == {1}
    assert max(r["mem_mb"] for r in derived["set-resources"].values()) == 2000
    assert derived["set-resources"]["generate_data"]["runtime"] == 10   # below the cap: unchanged
    with pytest.raises(slurm_profile.ProfileError, match="max_threads must be at least 1"):
        slurm_profile.derive(profile, max_threads=0)
    with pytest.raises(slurm_profile.ProfileError, match="set-resources: finetune: mem_mb"):
        slurm_profile.derive({"set-resources": {"finetune": {"mem_mb": "attempt * 1000"}}}, max_mem_mb=10)


def test_a_missing_profile_names_itself(tmp_path):
    with pytest.raises(slurm_profile.ProfileError, match="config.yaml: no such profile file"):
        slurm_profile.load(tmp_path)


# ---- the pre-submission check --------------------------------------------------------------------
SINFO = """\
cpu*|2|22057|(null)|infinite
gpu|32|256000|gpu:a100:4(S:0-1)|2-00:00:00
gpu|32|256000|gpu:h100:8|2-00:00:00
short|64|512000|(null)|1:00:00
"""


def _job(rule, threads=1, **resources):
    return slurm_fit.Job(rule, "model=m", threads, {"mem_mb": 1000, "runtime": 10, **resources})


def test_sinfo_rows_parse():
    nodes = slurm_fit.parse_sinfo(SINFO)
    assert [(n.partition, n.cpus, n.mem_mb, n.gpus, n.default) for n in nodes] == [
        ("cpu", 2, 22057, {}, True), ("gpu", 32, 256000, {"a100": 4}, False),
        ("gpu", 32, 256000, {"h100": 8}, False), ("short", 64, 512000, {}, False)]
    assert [n.max_minutes for n in nodes] == [float("inf"), 2880, 2880, 60]
    assert slurm_fit._minutes("30") == 30 and slurm_fit._minutes("1-12") == 2160


@pytest.mark.parametrize("job, partition_problem", [
    (_job("finetune", threads=16, mem_mb=128000), "asks 16 CPUs, 128000 MB, 0 GPUs"),
    (_job("unlearn", gpu=1), "asks 1 CPUs, 1000 MB, 1 GPUs"),                       # no GPU in cpu
    (_job("unlearn", gpu=1, slurm_partition="gpu", gpu_model="l40s"), "(a100, h100)"),
    (_job("unlearn", gpu=16, slurm_partition="gpu"), "asks 1 CPUs, 1000 MB, 16 GPUs"),
    (_job("evaluate_run", runtime=120, slurm_partition="short"), "time limit 60 min"),
    (_job("evaluate_run", slurm_partition="nope"), "there is no partition 'nope'"),
])
def test_a_job_no_node_can_run_is_refused_naming_rule_and_request(job, partition_problem):
    problems = slurm_fit.unschedulable([job], slurm_fit.parse_sinfo(SINFO))
    assert len(problems) == 1
    assert problems[0].startswith(f"rule {job.rule} (1 job(s), e.g. model=m) asks ")
    assert partition_problem in problems[0]
    assert "pend forever" in problems[0]


@pytest.mark.parametrize("job", [
    _job("finetune", threads=2, mem_mb=20000),
    _job("unlearn", threads=8, gpu=4, slurm_partition="gpu", gpu_model="a100"),
    _job("unlearn", threads=8, gpu=8, slurm_partition="gpu"),
    _job("evaluate_run", runtime=60, slurm_partition="short"),
])
def test_a_job_some_node_can_run_passes(job):
    assert slurm_fit.unschedulable([job], slurm_fit.parse_sinfo(SINFO)) == []


def test_requests_are_the_plugins_sbatch_flags():
    gpu_job = _job("unlearn", threads=8, gpu=2, gpu_model="a100", runtime=240, mem_mb=96000)
    assert slurm_fit.sbatch_request(gpu_job) == "-t 240 --mem 96000 --cpus-per-task=8 --gpus=a100:2"
    assert slurm_fit.sbatch_request(_job("finetune", threads=16)) == "-t 10 --mem 1000 --cpus-per-task=16"


def test_the_check_refuses_the_shipped_profile_on_a_small_node(tmp_path, capsys):
    sinfo_file = tmp_path / "sinfo.txt"
    sinfo_file.write_text("debug*|2|22057|(null)|infinite\n")
    code = slurm_fit.main(["--sinfo-file", str(sinfo_file), "--", "--snakefile", str(REPO / "Snakefile"),
                           "--workflow-profile", str(PROFILE), "--configfile", str(E2E_GRID),
                           "--directory", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1
    assert re.search(r"^error: rule finetune \(2 job\(s\), .*asks 16 CPUs, 128000 MB, 0 GPUs "
                     r"\[-t 480 --mem 128000 --cpus-per-task=16\]", captured.err, re.M)
    assert "generate_data" not in captured.err and "leaderboard" not in captured.err   # localrules


def test_gpu_requests_show_in_a_dry_run(tmp_path, capsys):
    config = tmp_path / "gpu.yaml"
    config.write_text(yaml.safe_dump({"models": {"tiny-llama": {"launcher": {"gpus": 2, "num_processes": 1}}}}))
    code = slurm_fit.main(["--no-sinfo", "--", "--snakefile", str(REPO / "Snakefile"), "--workflow-profile",
                           str(PROFILE), "--configfile", str(E2E_GRID), str(config), "--directory", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"^unlearn: 1 job\(s\): -t 240 --mem 96000 --cpus-per-task=8 --gpus=2$", out, re.M)
    assert re.search(r"^evaluate_run: 1 job\(s\): .*--gpus=1$", out, re.M)        # evaluation: at most 1


def _slurm_answers() -> bool:
    if shutil.which("sinfo") is None:
        return False
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=15).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def test_the_live_cluster_lists_nodes():
    if not _slurm_answers():
        pytest.skip("no Slurm answering here (sinfo absent or its daemons down); CI's .ci/slurm/e2e.sh starts one")
    nodes = slurm_fit.sinfo()
    assert nodes and all(n.cpus >= 1 and n.mem_mb >= 1 for n in nodes)


# ---- ubench without the venv on PATH -------------------------------------------------------------
@pytest.mark.slow
def test_jobs_find_ubench_without_the_venv_on_path(tmp_path):
    env = {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO)), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--cores", "1",
                             "--workflow-profile", str(REPO / "profiles" / "default"), "--configfile", str(E2E_GRID),
                             "--directory", str(tmp_path), "work/data/tofu-tiny"],
                            capture_output=True, text=True, env=env, timeout=300)
    log = tmp_path / "logs" / "generate_data" / "tofu-tiny.log"
    assert result.returncode == 0, (log.read_text() if log.exists() else "") + result.stderr[-3000:]
    assert (tmp_path / "work" / "data" / "tofu-tiny").is_dir()
