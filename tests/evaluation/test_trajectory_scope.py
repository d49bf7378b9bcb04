"""Scope "trajectory" (an intermediate point of evaluate_every) on every benchmark family: it returns
the headline forget / utility metrics and the matched metric, each equal to the full evaluation's,
and skips the rest (MIA, privleak, extra suites)."""
from __future__ import annotations

import pytest
import torch

from evaluation import benchmarks, finetune
from evaluation.benchmarks.base import EvalContext

# (benchmark, split, metrics the trajectory scope leaves out)
CASES = [
    ("tofu-tiny", "forget10", {"mia_mink_auc", "privleak", "forget_rouge"}),
    ("muse-tiny", "news", {"verbmem_forget", "privleak"}),
    ("wmdp-tiny", "bio", {"wmdp", "wmdp_cyber"}),
    ("rwku-tiny", "target-1", {"mia_fm_loss"}),
]


@pytest.fixture(scope="module")
def untrained_models(tmp_path_factory):
    torch.set_num_threads(1)
    root, out = tmp_path_factory.mktemp("trajectory_scope"), {}
    for name, _, _ in CASES:
        bench = benchmarks.get(name)
        data = bench.open(bench.generate(root / name))
        model, tokenizer, fmt, _ = finetune.starting_model("tiny-llama", bench, data, seed=0)
        out[name] = (bench, data, model.eval(), tokenizer, fmt)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name, split, skipped", CASES)
def test_trajectory_scope_gives_the_headline_metrics_of_the_full_evaluation(untrained_models, name, split, skipped):
    bench, data, model, tokenizer, fmt = untrained_models[name]
    variant = bench.default_variant
    run = lambda scope: bench.evaluate(EvalContext(model, tokenizer, fmt, data, split, variant, None,  # noqa: E731
                                                   batch_size=32, progress=False, scope=scope)).result["metrics"]
    full, point = run("all"), run("trajectory")
    required = bench.trajectory_metrics(full)
    assert len(required) >= 2 and set(required) <= set(point)
    for metric, value in point.items():
        assert metric in full
        if value is None or full[metric] is None:  # e.g. forget quality without a retain reference
            assert value is full[metric], metric
        else:
            assert value == pytest.approx(full[metric], abs=1e-9, nan_ok=True), metric
    present = skipped & set(full)
    assert present and not present & set(point), f"{name}: expected {present} to be skipped"


def test_unknown_scope_is_refused():
    with pytest.raises(ValueError, match="scope must be one of"):
        EvalContext(None, None, None, None, "forget10", "full", scope="some")
