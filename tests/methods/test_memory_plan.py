"""`ubench plan-memory`: parameter counts of the paper architectures, buffer counts per rectifier
and FSDP2 sharding (tests/workflows/test_memory_plan_grid.py: whole configs)."""
import pytest

from methods import memory_plan
from methods.memory_plan import Launch, plan_for


@pytest.mark.parametrize("name,billions", [("llama2-7b-chat", 6.74), ("llama-3-8b-instruct", 8.03),
                                           ("mistral-7b", 7.24), ("phi-1.5", 1.42), ("llama-3.2-1b-instruct", 1.24)])
def test_parameter_counts_match_the_published_models(name, billions):
    plan = plan_for(name, "ga", "none")
    assert plan.parameters / 1e9 == pytest.approx(billions, abs=0.01)


def test_rectifier_buffers_and_bytes_per_trainable_parameter():
    copies = {r: plan_for("llama2-7b-chat", "graddiff", r).buffers for r in ("none", "pcgrad", "sago", "gru")}
    assert copies == {"none": 1, "pcgrad": 2, "sago": 2, "gru": 3}
    plan = plan_for("llama2-7b-chat", "graddiff", "pcgrad")
    p = plan.trainable
    assert (plan.parts["weights"], plan.parts["optimizer"], plan.parts["gradient_buffers"]) == (4 * p, 8 * p, 8 * p)


def test_fsdp2_shards_states_and_reference_over_the_world():
    single = plan_for("llama2-7b-chat", "npo", "gru", dtype="bfloat16")
    sharded = plan_for("llama2-7b-chat", "npo", "gru", dtype="bfloat16", num_processes=4, sharded=True)
    for part in ("weights", "optimizer", "gradient_buffers", "reference"):
        assert sharded.parts[part] == single.parts[part] // 4
    assert single.parts["reference"] == 2 * single.parameters and sharded.parts["fsdp_unsharded"] > 0


def test_lora_and_grun_train_few_parameters_and_hold_no_reference_copy():
    for parametrization, args in (("lora", {"rank": 8}), ("grun", {"layers": [20, 25, 31], "rank": 4})):
        plan = memory_plan.plan_job(memory_plan.Job("mistral-7b", "npo", "none", parametrization,
                                                    {"parametrization_args": args}, "bfloat16"), Launch())
        assert 0 < plan.trainable < 0.01 * plan.parameters and plan.parts["reference"] == 0
        assert plan.parts["weights"] == pytest.approx(2 * plan.parameters, rel=0.01)


def test_activation_checkpointing_shrinks_the_activation_estimate():
    plain = plan_for("llama2-7b-chat", "graddiff", "none", {"max_length": 2048})
    ckpt = plan_for("llama2-7b-chat", "graddiff", "none", {"max_length": 2048, "gradient_checkpointing": True})
    assert ckpt.parts["activations"] < plain.parts["activations"] / 3


def test_unknown_architecture_names_the_fix():
    with pytest.raises(ValueError, match="ARCHITECTURES"):
        plan_for("my-own-13b", "ga", "none")
