"""The memory plan's precision terms: autocast's bf16 weight casts (and, with a second stream, the
bf16 weight gradients its cached casts defer), none under FSDP2 (FSDP casts per block) or with bf16
masters, whose weights and gradients take 2 bytes; and the plan against a measured bf16-compute
step on the CPU (torch.profiler's tensor peak, benchmarks/bench_memory.py) within 10%."""
import sys
import types
from pathlib import Path

import pytest
from transformers import LlamaConfig

from methods.memory_plan import Job, Launch, model_counts, plan_job

REPO = Path(__file__).resolve().parents[2]
SMALL = LlamaConfig(vocab_size=2048, hidden_size=256, intermediate_size=704, num_hidden_layers=4,
                    num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                    tie_word_embeddings=False)


def plan(objective="graddiff", launch=None, **hyper):
    return plan_job(Job(SMALL, objective, "none", hyperparameters={"batch_size": 2, "max_length": 16, **hyper}),
                    launch or Launch())


def test_autocast_casts_are_counted_per_trainable_matmul_parameter():
    counts = model_counts(SMALL, "full", {})
    embedding = SMALL.vocab_size * SMALL.hidden_size
    norms = SMALL.hidden_size * (2 * SMALL.num_hidden_layers + 1)
    assert counts.trainable_matmul == counts.trainable - embedding - norms  # every nn.Linear, lm_head included
    casts = 2 * counts.trainable_matmul
    assert plan(compute_dtype="bfloat16").parts["autocast_casts"] == 2 * casts       # two streams: + deferred grads
    assert plan("ga", compute_dtype="bfloat16").parts["autocast_casts"] == casts     # one stream
    assert plan(compute_dtype="bfloat16", gradient_checkpointing=True).parts["autocast_casts"] == casts
    assert plan(compute_dtype="float32").parts["autocast_casts"] == 0
    assert plan(compute_dtype="bfloat16", launch=Launch(num_processes=2, sharded=True)).parts["autocast_casts"] == 0


def test_bf16_masters_hold_two_byte_weights_and_gradients_and_no_casts():
    counts = model_counts(SMALL, "full", {})
    bf16 = plan(compute_dtype="bfloat16", master_dtype="bfloat16").parts
    fp32 = plan(compute_dtype="bfloat16").parts
    assert bf16["weights"] == 2 * counts.trainable and fp32["weights"] == 4 * counts.trainable
    assert bf16["optimizer"] == fp32["optimizer"] == 8 * counts.trainable  # fp32 moments either way
    assert bf16["master_grads"] == 2 * counts.trainable + 12 * counts.largest_trainable
    assert bf16["autocast_casts"] == 0 and "master_grads" not in fp32
    with pytest.raises(ValueError, match="needs compute_dtype bfloat16"):
        plan(compute_dtype="float32", master_dtype="bfloat16")


@pytest.mark.slow  # ~50 s per regime on 2 busy cores (profiled training + a timed rerun)
@pytest.mark.parametrize("master", ["float32", "bfloat16"])
def test_plan_matches_a_measured_bf16_step_on_cpu(master):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench_memory

    opts = types.SimpleNamespace(device="cpu", hidden=SMALL.hidden_size, layers=SMALL.num_hidden_layers,
                                 intermediate=SMALL.intermediate_size, heads=SMALL.num_attention_heads,
                                 vocab=SMALL.vocab_size, batch_size=2, length=16, steps=2,
                                 compute_dtype="bfloat16", master_dtype=master)
    measured = bench_memory.measure("none", opts)["peak_step_bytes"]
    predicted = bench_memory.predicted("none", opts)["step_bytes"]
    assert measured == pytest.approx(predicted, rel=0.10)
