"""The grid expansion: overrides, reference sources, duplicates (pure Python, no Snakemake)."""
from __future__ import annotations

import copy

import pytest

from workflows import grid


def _config(**experiment):
    base = {
        "models": {"m": {"base": "tiny-llama"}},
        "experiments": [{"benchmark": "tofu-tiny", "splits": ["forget10"], "models": ["m"],
                         "objectives": ["ga", "npo"], "rectifiers": ["none", "gru"]}],
    }
    base["experiments"][0].update(experiment)
    return base


def test_cartesian_product_and_method_dirs():
    g = grid.build(_config(seeds=[0, 1]), check_names=False)
    assert len(g.runs) == 2 * 2 * 2
    assert {r.method for r in g.runs} == {"ga+none", "ga+gru", "npo+none", "npo+gru"}
    lora = grid.build(_config(parametrizations=["full", "lora"]), check_names=False)
    assert {r.method for r in lora.runs if r.parametrization == "lora"} == {
        "ga+none+lora", "ga+gru+lora", "npo+none+lora", "npo+gru+lora"}


def test_overrides_apply_in_order_and_deep_merge():
    g = grid.build(_config(
        hyperparameters={"lr": 1e-3, "objective_args": {"beta": 0.1}},
        overrides=[
            {"when": {"objective": "npo"}, "set": {"lr": 2e-3, "objective_args": {"forget_weight": 2.0}}},
            {"when": {"objective": ["npo"], "rectifier": "gru"}, "set": {"lr": 3e-3}},
        ]), check_names=False)
    by = {r.method: r.hyperparameters for r in g.runs}
    assert by["ga+none"] == {"lr": 1e-3, "objective_args": {"beta": 0.1}}
    assert by["npo+none"] == {"lr": 2e-3, "objective_args": {"beta": 0.1, "forget_weight": 2.0}}
    assert by["npo+gru"]["lr"] == 3e-3


def test_overrides_do_not_leak_between_runs():
    config = _config(hyperparameters={"objective_args": {"beta": 0.1}},
                     overrides=[{"when": {"objective": "npo"}, "set": {"objective_args": {"beta": 9.0}}}])
    snapshot = copy.deepcopy(config)
    g = grid.build(config, check_names=False)
    assert g.run("tofu-tiny", "forget10", "m", "ga+none", 0).hyperparameters["objective_args"]["beta"] == 0.1
    assert config == snapshot


@pytest.mark.parametrize("split, retain", [("forget01", "retain99"), ("forget05", "retain95"),
                                           ("forget10", "retain90")])
def test_tofu_retain_split_pairing(split, retain):
    assert grid.retain_split("tofu", split) == retain


def test_retain_split_rejects_other_names():
    with pytest.raises(grid.GridError, match="not a tofu unlearning split.*forget10"):
        grid.retain_split("tofu", "bio")


def test_reference_sources():
    config = _config()
    config["models"]["m"].update(target="org/tofu_ft_{split}", retain="org/tofu_{retain_split}")
    ref = grid.build(config, check_names=False).references[0]
    assert ref.target == grid.ModelSource("external", "org/tofu_ft_forget10")
    assert ref.retain == grid.ModelSource("external", "org/tofu_retain90")

    auto = grid.build(_config(), check_names=False).references[0]
    assert auto.target == grid.ModelSource("finetune", "full")
    assert auto.retain == grid.ModelSource("finetune", "retain90")

    wmdp = _config(benchmark="wmdp", splits=["bio"])
    ref = grid.build(wmdp, check_names=False).references[0]
    assert ref.target == grid.ModelSource("external", "tiny-llama") and ref.retain is None


def test_finetune_on_a_benchmark_without_training_split_is_an_error():
    config = _config(benchmark="wmdp", splits=["bio"])
    config["models"]["m"]["target"] = "finetune"
    with pytest.raises(grid.GridError, match="wmdp has no fine-tuning split"):
        grid.build(config, check_names=False)


def test_duplicate_runs_across_experiments_are_an_error():
    config = _config()
    config["experiments"].append(copy.deepcopy(config["experiments"][0]))
    with pytest.raises(grid.GridError, match=r"experiments\[0\] and experiments\[1\]"):
        grid.build(config, check_names=False)


def test_unsafe_names_are_rejected():
    with pytest.raises(grid.GridError, match="splits/0"):
        grid.build(_config(splits=["../etc"]), check_names=False)


def test_reference_evaluation_passes_the_configured_prompt_format():
    from pathlib import Path

    from workflows.layout import Layout

    repo = Path(__file__).resolve().parents[2]
    paper = Layout(grid.build(grid.load_config(repo / "config" / "paper" / "gru_tofu.yaml")))
    formats = {paper.prompt_format_flag(run.model) for run in paper.grid.runs}
    assert formats == {"--prompt-format llama2-chat", "--prompt-format phi"}
    default = Layout(grid.build(grid.load_config()))
    assert default.prompt_format_flag("tiny-llama") == ""  # the model card in the folder says it


def test_generation_backend_reaches_every_evaluation_and_is_checked():
    from workflows.layout import Layout

    config = grid.load_config()
    config["evaluation"] = {"generation_backend": "vllm"}
    layout = Layout(grid.build(config))
    assert "--generation-backend vllm" in layout.evaluation_options("tofu-tiny")
    assert "--generation-backend" not in Layout(grid.build(grid.load_config())).evaluation_options("tofu-tiny")
    config["evaluation"] = {"generation_backend": "vlm"}
    with pytest.raises(grid.GridError, match=r"at evaluation/generation_backend: 'vlm' is not one of"):
        grid.build(config)


def test_item_caps_reach_every_evaluation_command():
    from workflows.cli import build_parser
    from workflows.layout import Layout

    config = grid.load_config()
    config["evaluation"] = {"item_cap": 4, "item_caps": {"muse-tiny": 1}}
    layout = Layout(grid.build(config))
    assert "--item-cap 4" in layout.evaluation_options("tofu-tiny")
    assert "--item-cap 1" in layout.evaluation_options("muse-tiny")  # the per-benchmark cap wins
    assert "--item-cap" not in Layout(grid.build(grid.load_config())).evaluation_options("tofu-tiny")
    for command in ("evaluate", "evaluate-run", "evaluate-attack"):  # every rule that takes the options
        args = build_parser().parse_args([command] + _required_args(command) + ["--item-cap", "4"])
        assert args.item_cap == 4
    config["evaluation"] = {"item_cap": 0}
    with pytest.raises(grid.GridError, match=r"at evaluation/item_cap"):
        grid.build(config)


def _required_args(command: str) -> list[str]:
    common = ["--model", "m", "--out", "o"]
    return {"evaluate": ["--benchmark", "tofu-tiny"],
            "evaluate-run": ["--spec", "{}", "--train-result", "t"],
            "evaluate-attack": ["--spec", "{}", "--attack", "{}"]}[command] + common


def test_fine_tunes_use_the_finetune_launcher_when_a_model_has_one():
    from pathlib import Path

    from workflows.layout import Layout

    repo = Path(__file__).resolve().parents[2]
    layout = Layout(grid.build(grid.load_config(repo / "config" / "paper" / "grun_tofu.yaml")))
    unlearn, finetune = layout.launch_prefix("mistral-7b"), layout.launch_prefix("mistral-7b", "finetune")
    assert "ddp.yaml" in unlearn and "--num_processes 2" in unlearn and layout.gpus("mistral-7b") == 2
    assert "fsdp.yaml" in finetune and "--num_processes 4" in finetune and layout.gpus("mistral-7b", "finetune") == 4
    paper = Layout(grid.build(grid.load_config(repo / "config" / "paper" / "gru_tofu.yaml")))  # no finetune_launcher
    assert paper.launch_prefix("phi-1.5", "finetune") == paper.launch_prefix("phi-1.5")
