# unlearn-bench: the experimental design as a DAG.
#
#   data (tofu-tiny) -> finetune (target on full, retain model on retainXX) -> evaluate references
#                    -> unlearn (benchmark x split x model x objective x rectifier x param x seed)
#                    -> evaluate -> leaderboard
#
#   snakemake --cores 2                                   the embedded default grid (config/default.yaml)
#   snakemake -n --configfile config/paper/gru_tofu.yaml  plan a paper table
#   snakemake --workflow-profile profiles/slurm ...       the same DAG on a cluster
#   ubench grid [--configfile ...]                        list the runs a config expands to
from snakemake.utils import min_version, validate

min_version("8.20")


# Jobs call `ubench` (and `accelerate`) by name: put the scripts folder of the Python running
# Snakemake first on PATH, so `.venv/bin/snakemake` works without an activated venv. Local jobs and
# Slurm jobs (sbatch exports the environment; the job's own Snakemake runs this line again) see it.
import sys


envvars:
    "PATH",


_scripts = os.path.dirname(sys.executable)
if _scripts not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _scripts + os.pathsep + os.environ.get("PATH", "")


# Parsed once by our loader first: Snakemake's own message for a YAML syntax error names neither
# the file nor the line (workflows.grid.load_yaml does). Files given with --configfile cannot be
# helped here: Snakemake 9 loads them in its command line (ConfigSettings, snakemake/settings/types.py)
# before this file runs, so the README points to `ubench config check --configfile F` for the line.
from workflows.grid import load_yaml

load_yaml(os.path.join(workflow.basedir, "config", "default.yaml"))


configfile: os.path.join(workflow.basedir, "config", "default.yaml")


validate(config, "workflows/schemas/config.schema.yaml")

from workflows.grid import build as build_grid
from workflows.layout import Layout, NAME, METHOD, ROLE, shlex_json

GRID = build_grid(config)
L = Layout(GRID)


wildcard_constraints:
    benchmark=NAME,
    split=NAME,
    model=NAME,
    train_split=NAME,
    method=METHOD,
    seed=r"\d+",
    role=ROLE,


include: "workflows/rules/data.smk"
include: "workflows/rules/finetune.smk"
include: "workflows/rules/evaluate.smk"
include: "workflows/rules/unlearn.smk"
include: "workflows/rules/attack.smk"
include: "workflows/rules/leaderboard.smk"
include: "workflows/rules/meta_eval.smk"


localrules:
    all,
    generate_data,
    leaderboard,
    meta_eval,


rule all:
    default_target: True
    input:
        L.final_targets(),
