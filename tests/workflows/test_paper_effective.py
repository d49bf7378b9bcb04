"""The paper configs run what the papers ran: every run of config/paper/*.yaml, expanded under its
declared launcher (process count included), against config/paper/official/effective.yaml, and the
global batch as a stated hyperparameter (grad_accum derived per launcher)."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from common.global_batch import grad_accum_for
from evaluation.finetune_presets import recipe_for
from workflows import effective, grid
from workflows.layout import Layout

REPO = Path(__file__).resolve().parents[2]
PAPER_CONFIGS = sorted((REPO / "config" / "paper").glob("*.yaml"))
TABLE = effective.load_table()


def test_every_paper_config_has_a_table_entry():
    assert sorted(p.stem for p in PAPER_CONFIGS) == sorted(TABLE)


@pytest.mark.parametrize("config", PAPER_CONFIGS, ids=lambda p: p.stem)
def test_paper_config_runs_and_finetunes_match_the_official_settings(config):
    assert effective.check(config, TABLE[config.stem]) == []


def _write(tmp_path, config: dict) -> Path:
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _gru_config() -> dict:
    return grid.load_yaml(REPO / "config" / "paper" / "gru_tofu.yaml")


def test_a_per_device_grad_accum_that_doubles_the_global_batch_is_caught(tmp_path):
    """The old gru_tofu: 4 x GA 8 per device on 2 DDP ranks is 64 examples a step, not GRU's 32."""
    config = _gru_config()
    for experiment in config["experiments"]:
        hyper = experiment["hyperparameters"] = dict(experiment["hyperparameters"])
        del hyper["global_batch_size"]
        hyper["grad_accum"] = 8
    config["models"]["llama2-7b-chat"]["launcher"]["num_processes"] = 1
    problems = effective.check(_write(tmp_path, config), TABLE["gru_tofu"])
    assert any("phi-1.5/ga+none: global_batch is 64, the paper ran 32" in p for p in problems)
    assert not any("llama2-7b-chat" in p and "global_batch" in p for p in problems)


def test_global_batch_size_gives_grad_accum_per_launcher():
    runs = grid.build(grid.load_config(REPO / "config" / "paper" / "gru_tofu.yaml")).runs
    accumulation = {run.model: run.hyperparameters["grad_accum"] for run in runs}
    assert accumulation == {"phi-1.5": 4, "llama2-7b-chat": 2}  # 4 x 4 x 2 ranks = 4 x 2 x 4 ranks = 32


def test_global_batch_size_errors_name_the_run_and_the_fix(tmp_path):
    config = _gru_config()
    config["models"]["phi-1.5"]["launcher"]["num_processes"] = 3
    with pytest.raises(grid.GridError, match=r"phi-1.5/ga\+none: global_batch_size 32 is not a multiple of "
                                             r"batch_size 4 x num_processes 3 = 12; use a launcher"):
        grid.build(grid.load_config(_write(tmp_path, config)))
    config = _gru_config()
    config["experiments"][0]["overrides"] = copy.deepcopy(config["experiments"][0]["overrides"]) + [
        {"when": {"model": "phi-1.5"}, "set": {"grad_accum": 4}}]
    with pytest.raises(grid.GridError, match="set both global_batch_size and grad_accum"):
        grid.build(grid.load_config(_write(tmp_path, config)))
    with pytest.raises(ValueError, match="use batch_size 8 .the largest that divides"):
        grad_accum_for(16, 16, 2)


def test_a_launch_with_another_process_count_is_refused():
    from workflows.commands import check_global_batch, train_config_from_spec

    spec = {"benchmark": "tofu-tiny", "split": "forget10", "objective": "ga", "rectifier": "none", "seed": 0,
            "hyperparameters": {"batch_size": 4, "grad_accum": 4, "global_batch_size": 32}}
    config = train_config_from_spec(spec)
    check_global_batch(spec, config, 2)
    with pytest.raises(ValueError, match=r"global_batch_size 32 but batch_size 4 x grad_accum 4 x 4 processes = 64"):
        check_global_batch(spec, config, 4)


def test_finetune_presets_train_at_32_under_any_process_count():
    for processes, accumulation in ((1, 8), (2, 4), (4, 2)):
        recipe = recipe_for("tofu", None, processes)
        assert recipe.grad_accum == accumulation and recipe.batch_size * recipe.grad_accum * processes == 32
    with pytest.raises(ValueError, match="states global_batch_size 32; override global_batch_size"):
        recipe_for("tofu", {"grad_accum": 2}, 1)
    assert recipe_for("tofu", {"grad_accum": 2, "global_batch_size": None}, 4).grad_accum == 2
    assert recipe_for("tofu-tiny", None, 2).grad_accum == 1   # fixed per-device recipes keep their grad_accum


def test_grun_mistral_target_trains_8_epochs_and_its_retain_reference_5():
    layout = Layout(grid.build(grid.load_config(REPO / "config" / "paper" / "grun_tofu.yaml")))
    target = layout.finetune_args("mistral-7b", "tofu", "full")
    assert "epochs=8" in target and "target" not in target
    assert "epochs" not in layout.finetune_args("mistral-7b", "tofu", "retain95")
    assert "epochs" not in layout.finetune_args("llama-3.1-8b", "tofu", "full")
    settings = effective.finetune_settings(layout.grid, "tofu", "mistral-7b", "full")
    assert settings["epochs"] == 8 and settings["global_batch"] == 32 and settings["num_processes"] == 4


def test_a_stale_deviation_and_an_unlabelled_extra_row_are_reported(tmp_path):
    config = _gru_config()
    config["report"]["deviations"].append({"name": "made-up", "fields": ["lr"], "text": "nothing differs"})
    del config["experiments"][-1]["label"]
    problems = effective.check(_write(tmp_path, config), TABLE["gru_tofu"])
    assert any("deviation 'made-up' names field 'lr'" in p for p in problems)
    assert any("wga_forget+gru-ce is no official branch" in p for p in problems)


def test_a_finetune_recipe_that_does_not_divide_under_its_launcher_fails_at_planning(tmp_path):
    config = _gru_config()
    config["models"]["phi-1.5"]["finetune_launcher"] = {"gpus": 3, "num_processes": 3}
    with pytest.raises(grid.GridError, match=r"models.phi-1.5.finetune \(tofu retain\d\d\): fine-tuning preset "
                                             r"'tofu-phi': global_batch_size 32 is not a multiple of batch_size 4 "
                                             r"x num_processes 3"):
        grid.build(grid.load_config(_write(tmp_path, config)))
