"""config/real.yaml (`make real`): it passes `ubench config check`, expands to the intended grid (RWKU
targets x 4 objectives x 4 rectifiers x 3 seeds, int4 on every run), and its target is the one the
committed measurement (docs/real-targets.json, benchmarks/rwku_known_targets.py) found the model knows
best. No model runs here."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from evaluation.benchmarks.rwku import parse_split
from workflows import grid

from tests.workflows.conftest import REPO

CONFIG = REPO / "config" / "real.yaml"
MEASUREMENT = REPO / "docs" / "real-targets.json"
OBJECTIVES = {"ga", "graddiff", "npo", "simnpo"}
RECTIFIERS = {"none", "gru", "pcgrad", "sago"}
SEEDS = {0, 1, 2}


@pytest.fixture(scope="module")
def real_grid():
    return grid.build(grid.load_config(CONFIG))


def test_the_config_check_passes():
    check = subprocess.run([sys.executable, "-m", "workflows.cli", "config", "check", "--configfile", str(CONFIG)],
                           cwd=REPO, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "config/real.yaml: ok" in check.stdout


def test_the_grid_is_every_objective_rectifier_and_seed_on_each_target(real_grid):
    splits = {run.split for run in real_grid.runs}
    assert {run.benchmark for run in real_grid.runs} == {"rwku"}
    assert {run.model for run in real_grid.runs} == {"smollm2-135m"}
    assert len(real_grid.runs) == len(splits) * len(OBJECTIVES) * len(RECTIFIERS) * len(SEEDS)
    cells = {(run.split, run.objective, run.rectifier, run.parametrization, int(run.seed)) for run in real_grid.runs}
    assert len(cells) == len(real_grid.runs)
    assert {c[1] for c in cells} == OBJECTIVES and {c[2] for c in cells} == RECTIFIERS
    assert {c[4] for c in cells} == SEEDS
    # trajectories (utility at matched forgetting needs them) and a forget corpus with a retain side
    assert all(0 < run.hyperparameters["evaluate_every"] < run.hyperparameters["max_steps"] for run in real_grid.runs)
    assert all(parse_split(split)["kind"] == "batch" for split in splits)


def test_every_run_is_attacked_with_int4(real_grid):
    for run in real_grid.runs:
        labels = {entry.label for entry in real_grid.attacks.get(run.key, [])}
        assert "quantize-int4" in labels, run.key


NEIGHBOUR_FLOOR = 0.25  # below it a target's neighbours are too little known to show utility loss


def test_the_target_is_the_best_known_of_the_measurement(real_grid):
    """config/real.yaml's rule: the highest base forget-All among the measured targets whose
    neighbour-All reaches NEIGHBOUR_FLOOR; its description quotes the measured numbers."""
    measured = json.loads(MEASUREMENT.read_text(encoding="utf-8"))
    assert measured["model"] == "smollm2-135m" and measured["variant"] == "sago"
    assert measured["item_cap"] == real_grid.config["evaluation"]["item_cap"]
    eligible = [row for row in measured["rows"] if row["neighbor_all"] >= NEIGHBOUR_FLOOR]
    best = max(eligible, key=lambda row: row["forget_all"])
    targets = {t for run in real_grid.runs for t in parse_split(run.split)["targets"]}
    assert targets == {best["target"]}
    description = real_grid.config["description"]
    assert f"forget-All {best['forget_all']:.3f}" in description
    assert f"neighbour-All {best['neighbor_all']:.3f}" in description
