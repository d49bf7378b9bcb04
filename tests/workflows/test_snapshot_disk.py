"""Trajectory snapshots are planned when the config loads: a run whose snapshots cannot fit the work
disk (or the snapshot_disk_gb cap) is refused, naming the run, the numbers and the fix."""
from __future__ import annotations

import pytest

from workflows import grid, snapshot_disk


def _config(hyperparameters, models_=None, **experiment):
    config = {
        "models": models_ or {"m": {"base": "tiny-llama"}},
        "experiments": [{"benchmark": "tofu-tiny", "splits": ["forget10"], "models": ["m"],
                         "objectives": ["ga"], "rectifiers": ["none"], "hyperparameters": hyperparameters}],
    }
    config["experiments"][0].update(experiment)
    return config


def _free(gb):
    return lambda folder: (snapshot_disk.Path("/disk"), int(gb * 1e9))


@pytest.mark.parametrize("name, parameters", [
    ("tiny-llama", 787_584),        # the meta model of methods.memory_plan
    ("phi-1.5", 1_418_270_720),     # microsoft/phi-1_5
    ("llama2-7b-chat", 6_738_415_616),  # Llama-2-7b
])
def test_parameter_count_from_the_architecture_sizes(name, parameters):
    assert snapshot_disk.full_parameters(*snapshot_disk.architecture_fields(name)) == parameters


def test_evaluate_every_1_for_100000_steps_is_refused_with_the_numbers_and_the_fix():
    with pytest.raises(grid.GridError) as error:
        grid.build(_config({"evaluate_every": 1, "max_steps": 100_000}), check_names=False)
    message = str(error.value)
    assert message.startswith("run tofu-tiny/forget10/m/ga+none/seed0: evaluate_every 1 with max_steps 100000")
    assert "99,999 trajectory snapshots" in message and "3.15 MB each" in message and "315.0 GB in all" in message
    assert "evaluate_every >=" in message and "snapshot_disk_gb" in message


def test_snapshots_past_the_free_disk_space_are_refused(monkeypatch):
    monkeypatch.setattr(snapshot_disk, "free_bytes", _free(0.005))  # 5 MB free: one 3.15 MB snapshot
    with pytest.raises(grid.GridError, match=r"6.30 MB in all, more than the 5.00 MB free on the disk of work/.*"
                                             r"evaluate_every >= 3"):
        grid.build(_config({"evaluate_every": 2, "max_steps": 6}), check_names=False)  # snapshots 2, 4
    assert snapshot_disk.check(grid.build(_config({"evaluate_every": 4, "max_steps": 6}), check_names=False),
                               free=_free(0.005))[0].snapshots == 1


def test_the_cap_applies_even_on_a_large_disk(monkeypatch):
    monkeypatch.setattr(snapshot_disk, "free_bytes", _free(10_000))
    config = {**_config({"evaluate_every": 10, "max_steps": 1000}), "snapshot_disk_gb": 0.1}
    with pytest.raises(grid.GridError, match=r"311.\d\d MB in all, more than the cap snapshot_disk_gb: 0.1"):
        grid.build(config, check_names=False)
    grid.build({**config, "snapshot_disk_gb": 1}, check_names=False)


def test_kept_snapshots_add_up_over_runs(monkeypatch):
    monkeypatch.setattr(snapshot_disk, "free_bytes", _free(0.1))  # each run's 63 MB fits, five together do not
    hyper = {"evaluate_every": 1, "max_steps": 21, "keep_checkpoints": True}
    with pytest.raises(grid.GridError, match=r"5 runs with keep_checkpoints: true keep 315.\d\d MB .* keep_checkpoints: false"):
        grid.build(_config(hyper, seeds=[0, 1, 2, 3, 4]), check_names=False)
    grid.build(_config({**hyper, "keep_checkpoints": False}, seeds=[0, 1, 2, 3, 4]), check_names=False)


def test_lora_is_judged_by_its_adapters_not_the_full_model(monkeypatch):
    """The full model's count is only a bound: past it, the exact trainable count decides."""
    monkeypatch.setattr(snapshot_disk, "free_bytes", _free(0.05))  # 50 MB: 20 full snapshots (63 MB) do not fit
    config = _config({"evaluate_every": 1, "max_steps": 21, "parametrization_args": {"rank": 2}},
                     parametrizations=["lora"])
    [plan] = snapshot_disk.check(grid.build(config, check_names=False), free=_free(0.05))
    assert plan.exact and plan.parameters < 787_584 // 10 and plan.total_bytes < 0.05e9


def test_runs_by_epochs_or_of_unknown_architecture_are_not_planned():
    assert snapshot_disk.plan_runs(grid.build(_config({"evaluate_every": 1, "epochs": 5}), check_names=False).runs,
                                   {"m": {"base": "tiny-llama"}}) == []
    assert snapshot_disk.architecture_fields("someone/unknown-model") is None
