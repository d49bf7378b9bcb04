"""Before submitting to Slurm: can some node run every job? A job bigger than every node of its
partition is accepted by sbatch and then pends forever (`PENDING PartitionConfig`) with no word
from Snakemake; this check names each such rule and its request instead, and exits 1.

It reads Snakemake's own plan (`snakemake -n`, so profiles, set-threads and set-resources are
resolved exactly as for the real run), turns each job's threads and resources into the sbatch
flags with the executor plugin's own functions, and compares them with `sinfo`'s nodes:

    python -m workflows.slurm_fit -- --workflow-profile profiles/slurm --configfile config/paper/gru_tofu.yaml
    python -m workflows.slurm_fit --no-sinfo -- ...    only print the requests (e.g. GPUs) per rule
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# threads are only constrained by --cores in a dry run; the real Slurm run has no such cap
UNCAPPED_CORES = "1000000"
SNAKEFILE = Path(__file__).resolve().parents[1] / "Snakefile"
SINFO_FORMAT = "%P|%c|%m|%G|%l"


@dataclass
class Job:
    rule: str
    wildcards: str = ""
    threads: int = 1
    resources: dict[str, Any] = field(default_factory=dict)

    @property
    def gpus(self) -> int:
        gpu = self.resources.get("gpu")
        if gpu:
            return int(gpu)
        match = re.match(r"gpu(?::[^:]+)?(?::(\d+))?", str(self.resources.get("gres", "")))
        return int(match.group(1) or 1) if match else 0

    @property
    def cpus(self) -> int:
        """CPUs Slurm reserves, as the plugin asks for them (cpus_per_task, else threads)."""
        per_task = self.resources.get("cpus_per_task")
        if isinstance(per_task, int) and per_task > 0:
            return per_task
        per_gpu = self.resources.get("cpus_per_gpu")
        if self.gpus and isinstance(per_gpu, int) and per_gpu > 0:
            return per_gpu * self.gpus
        return self.threads

    @property
    def mem_mb(self) -> int:
        if self.resources.get("mem_mb_per_cpu"):
            return int(self.resources["mem_mb_per_cpu"]) * self.cpus
        return int(self.resources.get("mem_mb") or 0)


@dataclass
class Node:
    partition: str
    cpus: int
    mem_mb: int
    gpus: dict[str, int]     # GRES gpu type ("" when untyped) -> count
    max_minutes: float       # partition time limit; inf for "infinite"
    default: bool = False


# ---- Snakemake's plan ------------------------------------------------------------------------
def local_rules(snakefile: Path = SNAKEFILE) -> set[str]:
    """Rules of the Snakefile's `localrules:` block: they run on the submitting host, never in Slurm
    (a dry run prints them as plain `rule`, so the plan alone cannot tell)."""
    match = re.search(r"^localrules:\s*\n((?:[ \t]+\S.*\n)+)|^localrules:(.*)$", snakefile.read_text(), re.M)
    if not match:
        return set()
    return {name.strip() for name in (match.group(1) or match.group(2)).replace("\n", ",").split(",") if name.strip()}


def _value(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


def parse_plan(text: str, local: set[str] = frozenset()) -> list[Job]:
    """Jobs of `snakemake -n` output that go to Slurm (localrules run on this host: skipped)."""
    jobs, job = [], None
    for line in text.splitlines():
        header = re.match(r"(local)?(rule|checkpoint) (\S+):$", line)
        if header:
            job = None if header.group(1) or header.group(3) in local else Job(header.group(3))
            if job:
                jobs.append(job)
            continue
        field_line = re.match(r"\s+(\w+): (.*)$", line)
        if job is None or not field_line:
            continue
        key, value = field_line.groups()
        if key == "threads":
            job.threads = int(value)
        elif key == "wildcards":
            job.wildcards = value
        elif key == "resources":
            job.resources = {name: _value(raw) for name, _, raw in
                             (item.partition("=") for item in value.split(", "))}
    return jobs


def plan(snakemake_args: list[str]) -> list[Job]:
    snakemake = Path(sys.executable).with_name("snakemake")
    command = [str(snakemake), "-n", "--cores", UNCAPPED_CORES, *snakemake_args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"error: `snakemake -n` failed, so nothing was checked:\n{result.stderr[-3000:]}")
    return parse_plan(result.stdout + result.stderr, local_rules())


# ---- the cluster -------------------------------------------------------------------------------
def _minutes(limit: str) -> float:
    """Slurm time limit ('infinite', 'MM', 'HH:MM:SS', 'D-HH:MM:SS', 'D-HH') in minutes."""
    if limit in ("infinite", "UNLIMITED", "n/a"):
        return float("inf")
    days, _, clock = limit.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    if days:
        hours, minutes, seconds = (parts + [0, 0, 0])[:3]
    else:
        hours, minutes, seconds = ([0, 0, 0] + parts)[-3:] if len(parts) > 1 else (0, parts[0], 0)
    return int(days or 0) * 1440 + hours * 60 + minutes + seconds / 60


def _gpus(gres: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in gres.split(","):
        match = re.match(r"gpu(?::([^:(]+))?:(\d+)", item.strip())
        if match:
            kind = "" if (match.group(1) or "").isdigit() else (match.group(1) or "")
            found[kind] = found.get(kind, 0) + int(match.group(2))
    return found


def parse_sinfo(text: str) -> list[Node]:
    """Rows of `sinfo -h -N -o '%P|%c|%m|%G|%l'` (a node once per partition)."""
    nodes = []
    for line in text.splitlines():
        if not line.strip():
            continue
        partition, cpus, mem, gres, limit = line.strip().split("|")
        nodes.append(Node(partition.rstrip("*"), int(cpus.rstrip("+")), int(mem.rstrip("+")), _gpus(gres),
                          _minutes(limit), default=partition.endswith("*")))
    return nodes


def sinfo() -> list[Node]:
    result = subprocess.run(["sinfo", "-h", "-N", "-o", SINFO_FORMAT], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"error: sinfo failed ({result.stderr.strip()}): is this a Slurm login node?")
    return parse_sinfo(result.stdout)


# ---- the check ---------------------------------------------------------------------------------
def sbatch_request(job: Job) -> str:
    """The resource flags the executor plugin will pass to sbatch for this job (its own code)."""
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    from snakemake_executor_plugin_slurm_jobstep import get_cpu_setting

    class _Resources(dict):
        __getattr__ = dict.__getitem__

    shim = type("JobShim", (), {"resources": _Resources(job.resources), "threads": job.threads})()
    gpu_job = bool(job.resources.get("gpu")) or "gpu" in str(job.resources.get("gres", ""))
    flags = [f"-t {job.resources['runtime']}"] if job.resources.get("runtime") else []
    if job.resources.get("mem_mb_per_cpu"):
        flags.append(f"--mem-per-cpu {job.resources['mem_mb_per_cpu']}")
    elif job.resources.get("mem_mb"):
        flags.append(f"--mem {job.resources['mem_mb']}")
    flags.append(get_cpu_setting(shim, gpu_job))
    flags.append(set_gres_string(shim).strip())
    if job.resources.get("slurm_partition"):
        flags.append(f"-p {job.resources['slurm_partition']}")
    return " ".join(flag for flag in flags if flag)


def _fits(job: Job, node: Node) -> bool:
    model = str(job.resources.get("gpu_model") or "")
    gpus = sum(node.gpus.values()) if not model else node.gpus.get(model, 0)
    runtime = job.resources.get("runtime")
    return (job.cpus <= node.cpus and job.mem_mb <= node.mem_mb and job.gpus <= gpus
            and (not isinstance(runtime, int) or runtime <= node.max_minutes))


def _largest(nodes: list[Node]) -> str:
    gpus = max((sum(n.gpus.values()) for n in nodes), default=0)
    kinds = sorted({k for n in nodes for k in n.gpus if k})
    limit = max(n.max_minutes for n in nodes)
    return (f"{max(n.cpus for n in nodes)} CPUs, {max(n.mem_mb for n in nodes)} MB, {gpus} GPUs"
            + (f" ({', '.join(kinds)})" if kinds else "")
            + (f", time limit {limit:g} min" if limit != float("inf") else ""))


def unschedulable(jobs: list[Job], nodes: list[Node]) -> list[str]:
    """One line per rule whose request no node of its partition can meet."""
    default = next((n.partition for n in nodes if n.default), None)
    problems: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        partition = str(job.resources.get("slurm_partition") or default or "")
        candidates = [n for n in nodes if n.partition == partition]
        if not candidates or not any(_fits(job, n) for n in candidates):
            problems.setdefault((job.rule, partition), []).append(job)
    lines = []
    for (rule, partition), stuck in problems.items():
        candidates = [n for n in nodes if n.partition == partition]
        where = (f"the largest node of partition '{partition}' has {_largest(candidates)}" if candidates
                 else f"there is no partition '{partition}' (sinfo lists {sorted({n.partition for n in nodes})})")
        lines.append(f"rule {rule} ({len(stuck)} job(s), e.g. {stuck[0].wildcards or 'no wildcards'}) asks "
                     f"{stuck[0].cpus} CPUs, {stuck[0].mem_mb} MB, {stuck[0].gpus} GPUs "
                     f"[{sbatch_request(stuck[0])}], but {where}: it would pend forever. Lower set-threads / "
                     f"set-resources for {rule} in the profile, or pick another partition.")
    return lines


def requests(jobs: list[Job]) -> list[str]:
    """'rule: N jobs: <sbatch flags>' for every distinct request of the plan."""
    counts: dict[tuple[str, str], int] = {}
    for job in jobs:
        key = (job.rule, sbatch_request(job))
        counts[key] = counts.get(key, 0) + 1
    return [f"{rule}: {n} job(s): {request}" for (rule, request), n in sorted(counts.items())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workflows.slurm_fit",
        description="Print each rule's Slurm request (sbatch flags) and refuse a plan in which some job "
                    "is bigger than every node of its partition (it would pend forever). Arguments "
                    "after -- go to `snakemake -n` (profile, --configfile, targets).")
    parser.add_argument("--no-sinfo", action="store_true",
                        help="only print the requests (no cluster needed: a dry run of the GPU requests)")
    parser.add_argument("--sinfo-file", type=Path,
                        help="read `sinfo -h -N -o '%s'` output from this file instead of running sinfo"
                        % SINFO_FORMAT.replace("%", "%%"))
    parser.add_argument("snakemake_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    snakemake_args = args.snakemake_args[1:] if args.snakemake_args[:1] == ["--"] else args.snakemake_args
    jobs = plan(snakemake_args)
    print("\n".join(requests(jobs)) or "no job goes to Slurm (nothing to do, or only localrules)")
    if args.no_sinfo:
        return 0
    nodes = parse_sinfo(args.sinfo_file.read_text()) if args.sinfo_file else sinfo()
    problems = unschedulable(jobs, nodes)
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
