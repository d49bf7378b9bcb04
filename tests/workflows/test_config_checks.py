"""Config-time checks (issue #15): mistakes a job would find after data generation and fine-tuning
are reported when the config is loaded, naming the key and the accepted values."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from evaluation import models
from workflows import grid


def _config(models_=None, **experiment):
    config = {
        "models": models_ or {"m": {"base": "tiny-llama"}},
        "experiments": [{"benchmark": "tofu-tiny", "splits": ["forget10"], "models": ["m"],
                         "objectives": ["ga", "npo"], "rectifiers": ["none", "gru"]}],
    }
    config["experiments"][0].update(experiment)
    return config


@pytest.mark.parametrize("hyperparameters, message", [
    ({"objective_args": {"betta": 0.2}}, r"objective_args: objective 'npo' does not take argument\(s\) \['betta'\]"),
    ({"rectifier_args": {"gama": 0.5}}, r"rectifier_args: rectifier 'gru' does not take argument\(s\) \['gama'\]"),
    ({"parametrization_args": {"rank": 4}}, r"parametrization_args: parametrization 'full' does not take"),
    ({"analyzers": ["geffekt"]}, r"analyzers\[0\]: unknown analyzer 'geffekt'; available: .*geffect"),
    ({"analyzers": [{"name": "geffect", "evrey": 5}]}, r"analyzers\[0\]: analyzer 'geffect' does not take"),
])
def test_misspelt_method_arguments_fail_at_load(hyperparameters, message):
    with pytest.raises(grid.GridError, match=message):
        grid.build(_config(hyperparameters=hyperparameters, objectives=["npo"], rectifiers=["gru"]))


def test_accepted_method_arguments_pass():
    g = grid.build(_config(hyperparameters={"objective_args": {"beta": 0.2}, "analyzers": [{"name": "geffect", "every": 5}]},
                           objectives=["npo"], rectifiers=["gru"]))
    assert len(g.runs) == 1


def test_unknown_prompt_format_is_named():
    with pytest.raises(grid.GridError, match=r"models\.m\.prompt_format: unknown prompt format 'llama3'; "
                                             r"accepted: chat-template, llama2-chat, llama3-chat, phi"):
        grid.build(_config({"m": {"base": "tiny-llama", "prompt_format": "llama3"}}))


def test_missing_target_folder_is_named(tmp_path):
    with pytest.raises(grid.GridError, match=r"models\.m\.target: model folder .*/no-such-model' does not exist"):
        grid.build(_config({"m": {"base": "tiny-llama", "target": str(tmp_path / "no-such-model"),
                                  "retain": "none"}}))


def test_preset_typo_is_not_a_hub_id():
    with pytest.raises(grid.GridError, match=r"models\.m\.base: 'tiny-lama' is neither a model preset nor a "
                                             r"local folder \(did you mean 'tiny-llama'\?\); presets: "):
        grid.build(_config({"m": {"base": "tiny-lama"}}))


def test_hub_id_fails_at_once_when_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match=r"'someone/missing-model' .* HF_HUB_OFFLINE=1 is set"):
        models.resolve("someone/missing-model")


def test_hub_id_fails_at_once_when_unreachable(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(ValueError, match="the Hugging Face Hub cannot be reached"):
        models.resolve("someone/missing-model")


def test_override_that_matches_no_run_is_an_error_naming_when_and_the_values():
    overrides = [{"when": {"objective": "npoo"}, "set": {"lr": 1e-3}}]
    with pytest.raises(grid.GridError, match=r"experiments\[0\]\.overrides\[0\]\.when\.objective: 'npoo' "
                                             r"matches no run of this experiment \(its objectives: ga, npo\)"
                                             r"(.|\n)*strict_overrides: false"):
        grid.build(_config(overrides=overrides))
    grid.build(_config(overrides=[{"when": {"objective": ["npoo", "npo"]}, "set": {"lr": 1e-3}}]))


def test_strict_overrides_false_turns_the_error_into_a_warning():
    config = _config(overrides=[{"when": {"rectifier": "gruu"}, "set": {"lr": 1e-3}}])
    config["strict_overrides"] = False
    with pytest.warns(grid.UnusedOverride, match=r"when\.rectifier: 'gruu' matches no run .*its rectifiers: none, gru"):
        grid.build(config)


def test_override_list_shared_by_experiments_needs_each_override_to_select_runs_in_one_of_them():
    shared = [{"when": {"rectifier": "gru"}, "set": {"lr": 1e-3}}, {"when": {"objective": "npo"}, "set": {"lr": 2e-3}}]
    config = _config(overrides=shared, rectifiers=["none"])  # the gru override is for the second experiment
    config["experiments"].append({**config["experiments"][0], "rectifiers": ["gru"], "objectives": ["ga"],
                                  "overrides": shared})
    g = grid.build(config)
    assert {(r.rectifier, r.objective, r.hyperparameters.get("lr")) for r in g.runs} == {
        ("none", "ga", None), ("none", "npo", 2e-3), ("gru", "ga", 1e-3)}
    config["experiments"][1]["rectifiers"] = ["pcgrad"]  # now the gru override selects nothing anywhere
    with pytest.raises(grid.GridError, match=r"experiments\[0\]\.overrides\[0\]\.when\.rectifier: 'gru'"):
        grid.build(config)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_positive_numbers_are_rejected(value):
    with pytest.raises(grid.GridError, match=r"experiments/0/hyperparameters/lr: (nan|inf) is not a finite number"):
        grid.build(_config(hyperparameters={"lr": value}))


def test_nan_from_yaml_is_rejected(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("experiments:\n  - {benchmark: tofu-tiny, splits: [forget10], models: [tiny-llama], "
                    "objectives: [ga], rectifiers: [none], hyperparameters: {max_grad_norm: .nan}}\n")
    with pytest.raises(grid.GridError, match="max_grad_norm: nan is not a finite number"):
        grid.build(grid.load_config(path))


# ---- model folders: which file is wrong and what to do -----------------------------------------

@pytest.fixture
def model_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "tokenizer.json").write_text("{}")
    save_file({"w": torch.zeros(64, 64)}, folder / "model.safetensors")
    return folder


def test_folder_without_tokenizer(model_folder):
    (model_folder / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"model has no tokenizer .*tokenizer\.save_pretrained"):
        models.resolve(str(model_folder))


def test_truncated_safetensors(model_folder):
    weights = model_folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"model\.safetensors is truncated \(expected \d+ bytes\) .*re-run"):
        models.resolve(str(model_folder))


def test_corrupt_model_card(model_folder):
    (model_folder / models.MODEL_CARD).write_text('{"prompt_format": "phi"')
    with pytest.raises(ValueError, match=r"ubench_model\.json: corrupt model card .*delete it"):
        models.resolve(str(model_folder))
    (model_folder / models.MODEL_CARD).write_text(json.dumps({"prompt_format": "phi"}))
    assert models.resolve(str(model_folder)) == (str(model_folder), "phi")


def test_unknown_split_is_named_with_the_accepted_ones():
    with pytest.raises(grid.GridError, match=r"split 'forget11' is not a tofu-tiny unlearning split; .*forget10"):
        grid.build(_config(splits=["forget11"]))


@pytest.mark.parametrize("hyperparameters, extra, message", [
    ({"max_steps": 4, "evaluate_every": 4}, {}, r"evaluate_every 4 is not below max_steps 4"),
    ({"max_steps": 4, "evaluate_every": 0}, {}, r"evaluate_every.*(minimum|less than)"),
    ({"keep_checkpoints": True}, {}, r"keep_checkpoints needs evaluate_every"),
    ({"max_steps": 4, "evaluate_every": 2, "parametrization_args": {"save": "adapter"}},
     {"parametrizations": ["lora"]}, r"evaluate_every needs LoRA's merged save"),
])
def test_trajectory_settings_are_checked_at_load(hyperparameters, extra, message):
    with pytest.raises(grid.GridError, match=message):
        grid.build(_config(hyperparameters=hyperparameters, **extra))


def test_trajectory_settings_pass_and_stay_out_of_other_runs():
    g = grid.build(_config(hyperparameters={"max_steps": 4}, overrides=[
        {"when": {"objective": "ga"}, "set": {"evaluate_every": 2, "keep_checkpoints": True}}]))
    by_objective = {run.objective: run.hyperparameters for run in g.runs}
    assert by_objective["ga"]["evaluate_every"] == 2
    assert "evaluate_every" not in by_objective["npo"] and "keep_checkpoints" not in by_objective["npo"]
