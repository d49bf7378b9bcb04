"""RMU: forget activations at the hooked block move toward c·u, only the chosen parameters change,
retain activations are matched to the frozen model, presets and masks."""
import pytest
import torch
import torch.nn.functional as F

from methods.data import collate
from methods.objectives.rmu import (PRESETS, RMU, activation_mse, block_output, control_vector,
                                    reference_block_output)
from methods.parametrizations.full import Full
from methods.train import TrainConfig, train
from tests.methods.conftest import make_streams, tiny_llama

TRAINED = "model.layers.1.mlp.*"  # down_proj alone moves too slowly at a random tiny init


def distance_to_target(model, stream, u, c, layer=1):
    with torch.no_grad():
        h = block_output(model, collate(stream, 0), layer)
    return (h - c * u).pow(2).mean().item()


def test_forget_activations_move_toward_the_control_vector_and_only_chosen_params_change(tmp_path):
    streams = make_streams()
    model = tiny_llama()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    u = control_vector(32, 42, "cpu")
    start = distance_to_target(model, streams["forget"], u, 6.5)
    config = TrainConfig(objective="rmu", parametrization="subset", lr=3e-2, max_steps=30, batch_size=6,
                         scheduler="constant", objective_args={"layer": 1, "steering_coeff": 6.5, "retain_weight": 1.0, "mask": "none"},
                         parametrization_args={"params": [TRAINED]})
    result = train(model, streams, config, tmp_path, pad_token_id=0, progress=False)
    assert result.status == "ok" and result.trainable_parameters == 3 * 64 * 32
    end = distance_to_target(model, streams["forget"], u, 6.5)
    assert end < 0.5 * start, (start, end)
    after = model.state_dict()
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed == [f"model.layers.1.mlp.{m}.weight" for m in ("down_proj", "gate_proj", "up_proj")]


def test_control_vector_is_uniform_positive_unit_and_seeded():
    u = control_vector(64, 42, "cpu")
    assert torch.all(u >= 0) and abs(u.norm().item() - 1) < 1e-6
    torch.testing.assert_close(u, control_vector(64, 42, "cpu"))
    assert not torch.equal(u, control_vector(64, 1, "cpu"))


def test_masked_and_unmasked_mse():
    h, t = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    torch.testing.assert_close(activation_mse(h, t, None), F.mse_loss(h, t))  # official: every position
    mask = torch.tensor([[0, 0, 1, 1, 0], [0, 1, 1, 1, 1]]).float()
    manual = torch.stack([((h[b, i] - t[b, i]) ** 2).mean() for b in range(2) for i in range(5) if mask[b, i]]).mean()
    torch.testing.assert_close(activation_mse(h, t, mask), manual)


def test_retain_loss_is_zero_at_the_start_and_reference_block_matches_the_copy():
    streams = make_streams()
    model = tiny_llama()
    full = Full()
    model = full.prepare(model, needs_reference=True)
    batches = {"forget": collate(streams["forget"][:4], 0), "retain": collate(streams["retain"][:4], 0)}
    rmu = RMU(layer=1)
    losses = rmu.losses(model, batches, lambda b: full.reference_logits(model, b))
    assert losses["retain"].item() == 0.0 and losses["forget"].item() > 0
    block = type(model.model.layers[1])
    torch.testing.assert_close(reference_block_output(lambda b: full.reference_logits(model, b), block, batches["retain"], 0),
                               block_output(full.reference, batches["retain"], 0))


def test_wmdp_zephyr_preset_and_explicit_arguments_win():
    rmu = RMU(preset="wmdp-zephyr")
    assert (rmu.args["layer"], rmu.args["steering_coeff"], rmu.args["retain_weight"], rmu.args["mask"]) == (7, 6.5, 1200.0, "none")
    assert RMU(preset="wmdp-zephyr", steering_coeff=20.0).args["steering_coeff"] == 20.0
    assert RMU().args["mask"] == "labels" and RMU().args["steering_coeff"] == 2.0  # OU TOFU defaults
    assert "wmdp-zephyr" in PRESETS
    with pytest.raises(ValueError, match="preset"):
        RMU(preset="zephyr")
    with pytest.raises(ValueError, match="layer 7 does not exist"):
        RMU().losses(tiny_llama(), {"forget": collate(make_streams()["forget"][:2], 0),
                                    "retain": collate(make_streams()["retain"][:2], 0)}, lambda b: None)


@pytest.mark.parametrize("parametrization,args", [("lora", {"rank": 2}), ("grun", {"layers": [0], "rank": 2})])
def test_rmu_runs_through_other_parametrizations(tmp_path, parametrization, args):
    config = TrainConfig(objective="rmu", rectifier="gru", parametrization=parametrization, lr=1e-2, max_steps=2,
                         batch_size=4, objective_args={"layer": 1}, parametrization_args=args)
    streams, model = make_streams(), tiny_llama()
    u = control_vector(32, 42, "cpu")  # RMU's default seed; c = 2 (default steering_coeff)
    before = distance_to_target(model, streams["forget"], u, 2.0)
    assert train(model, streams, config, tmp_path, pad_token_id=0, progress=False).status == "ok"
    assert distance_to_target(model, streams["forget"], u, 2.0) < before  # toward c·u at the hooked layer
