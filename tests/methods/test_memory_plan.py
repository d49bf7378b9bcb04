"""`ubench plan-memory`: parameter counts of the paper architectures, buffer counts per rectifier,
FSDP2 sharding, and every paper config fitting its declared 80 GB GPUs (fast)."""
from pathlib import Path

import pytest

from methods import memory_plan
from methods.memory_plan import Launch, plan_for

REPO = Path(__file__).resolve().parents[2]


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


def test_every_paper_config_fits_its_gpus_and_plans_in_seconds():
    """Every paper config fits its declared GPUs with every term counted, and plans in <= 10 s of CPU
    (meta models are built once per architecture; grun_tofu took ~100 s when each job built its own)."""
    import time

    from workflows import grid

    for config in sorted((REPO / "config" / "paper").glob("*.yaml")):
        started = time.process_time()
        lines = []
        fits = memory_plan.report(grid.build(grid.load_config(str(config))), out=lines.append)
        seconds = time.process_time() - started
        assert fits, config.stem + ":\n" + "\n".join(line for line in lines if "DOES NOT FIT" in line)
        assert lines[-1].endswith("all fit their declared GPUs")
        assert seconds <= 10, f"{config.stem}: plan-memory took {seconds:.1f} s of CPU"


def test_cli_exit_status_says_whether_it_fits(tmp_path, capsys):
    from workflows.cli import main

    tight = tmp_path / "tight.yaml"
    text = (REPO / "config" / "paper" / "ou_tofu.yaml").read_text()
    tight.write_text(text.replace("mixed_precision: bf16}", "mixed_precision: bf16, gpu_memory_gb: 16}"))
    assert main(["plan-memory", "--configfile", str(tight)]) == 1
    assert "DOES NOT FIT" in capsys.readouterr().out
