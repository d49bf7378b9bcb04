"""Trajectory snapshots (evaluate_every): written at K, 2K, ... before the last step, holding exactly
the trainable state the loop had there, and loadable onto the final model to rebuild that step."""
import dataclasses

import pytest
import torch

from methods import snapshots
from methods.train import TrainConfig, train
from tests.methods.conftest import tiny_llama

# constant LR, no warm-up: a run stopped at step k follows the same schedule as the longer run
CONFIG = TrainConfig(objective="graddiff", lr=5e-3, max_steps=5, batch_size=3, scheduler="constant", seed=3)


def test_steps_are_multiples_before_the_last():
    assert snapshots.snapshot_steps(2, 5) == [2, 4]
    assert snapshots.snapshot_steps(2, 4) == [2]
    assert snapshots.snapshot_steps(5, 5) == []


def test_snapshot_equals_a_run_stopped_there_and_rebuilds_that_model(tmp_path, streams):
    final = tiny_llama()
    train(final, streams, CONFIG, tmp_path / "long", pad_token_id=0, progress=False, snapshot_every=2)
    found = snapshots.list_snapshots(tmp_path / "long" / "snapshots")
    assert [s.step for s in found] == [2, 4]
    stopped = tiny_llama()
    train(stopped, streams, dataclasses.replace(CONFIG, max_steps=2), tmp_path / "short", pad_token_id=0,
          progress=False)
    state, extras = found[0].load()
    assert extras == {}
    assert set(state) == {name for name, _ in stopped.named_parameters()}  # full: every weight
    # the final model with the step-2 snapshot swapped in is the run stopped at step 2
    snapshots.apply(final, state, extras)
    for (name, rebuilt), (_, expected) in zip(final.named_parameters(), stopped.named_parameters()):
        torch.testing.assert_close(rebuilt, expected, rtol=0, atol=0, msg=name)


def test_subset_and_grun_snapshots_hold_only_what_trains(tmp_path, streams):
    subset = dataclasses.replace(CONFIG, max_steps=3, parametrization="subset",
                                 parametrization_args={"params": ["model.layers.1.mlp.down_proj.weight"]})
    train(tiny_llama(), streams, subset, tmp_path / "subset", pad_token_id=0, progress=False, snapshot_every=2)
    state, _ = snapshots.list_snapshots(tmp_path / "subset" / "snapshots")[0].load()
    assert list(state) == ["model.layers.1.mlp.down_proj.weight"]

    grun = dataclasses.replace(CONFIG, max_steps=3, parametrization="grun",
                               parametrization_args={"layers": [1], "rank": 2})
    model = tiny_llama()
    train(model, streams, grun, tmp_path / "grun", pad_token_id=0, progress=False, snapshot_every=2)
    state, extras = snapshots.list_snapshots(tmp_path / "grun" / "snapshots")[0].load()
    assert state and all(name.startswith("grun.") for name in state)
    assert isinstance(extras["grun_prompt_suffix"], list)
    # the saved final GRUN model, loaded as evaluation loads it, takes the snapshot: edits and suffix
    from methods.parametrizations.grun import GRUN, load_grun_model

    GRUN(layers=[1], rank=2).save(model, tmp_path / "grun-model")
    loaded = load_grun_model(tmp_path / "grun-model")
    first = next(iter(state))
    assert not torch.equal(dict(loaded.named_parameters())[first], state[first])
    loaded.grun.prompt_suffix = [999]
    snapshots.apply(loaded, state, extras)
    assert all(torch.equal(dict(loaded.named_parameters())[name], value) for name, value in state.items())
    assert loaded.grun.prompt_suffix == (extras["grun_prompt_suffix"] or None)


def test_lora_snapshot_merged_into_the_target_equals_the_run_saved_at_that_step(tmp_path, streams):
    from methods.parametrizations.lora import LoRA, merge_adapters

    lora = dataclasses.replace(CONFIG, max_steps=3, parametrization="lora",
                               parametrization_args={"rank": 2, "target_modules": ["q_proj", "down_proj"]})
    final = tiny_llama()
    train(final, streams, lora, tmp_path / "long", pad_token_id=0, progress=False, snapshot_every=2)
    final = merge_adapters(final)  # what `ubench unlearn` saves
    state, extras = snapshots.list_snapshots(tmp_path / "long" / "snapshots")[0].load()
    assert state and all("lora_" in name for name in state)
    stopped = tiny_llama()
    train(stopped, streams, dataclasses.replace(lora, max_steps=2), tmp_path / "short", pad_token_id=0, progress=False)
    stopped = merge_adapters(stopped)
    rebuild = snapshots.LoraRebuild(tiny_llama(), lora.parametrization_args)
    merged = rebuild(state)
    assert sorted(merged) == sorted(n for n, _ in stopped.named_parameters() if n.endswith(("q_proj.weight", "down_proj.weight")))
    snapshots.apply(final, merged, extras)
    for (name, rebuilt), (_, expected) in zip(final.named_parameters(), stopped.named_parameters()):
        torch.testing.assert_close(rebuilt, expected, rtol=0, atol=0, msg=name)
    again = rebuild(state)  # W0 is restored between snapshots
    assert all(torch.equal(again[n], merged[n]) for n in merged)
    with pytest.raises(ValueError, match="merged save"):
        snapshots.check_supported({"save": "adapter"})


def test_bad_snapshots_are_refused(tmp_path, streams):
    snapshots.check_supported({"save": "merged"})  # any parametrization snapshots its trainable state
    with pytest.raises(ValueError, match="not parameters of the evaluated model"):
        snapshots.apply(tiny_llama(), {"nope.weight": torch.zeros(1)}, {})
    with pytest.raises(FileNotFoundError, match="written by `ubench unlearn`"):
        snapshots.list_snapshots(tmp_path / "missing")
