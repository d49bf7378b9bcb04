"""muse-tiny acceptance: the tiny Llama fine-tuned on forget + retain (the target) memorises the
forget articles, the retrained reference (retain only) does not. Printed and asserted, for both
evaluator variants; the target's PrivLeak is read against the retrained model's evaluation."""
from __future__ import annotations

import pytest

from evaluation import evaluate, finetune
from evaluation.benchmarks.muse import tiny

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory):
    root = tmp_path_factory.mktemp("muse_tiny_acceptance")
    data = tiny.write(root / "data")
    models = {role: finetune.run("muse-tiny", str(data), split, "tiny-llama", root / role, progress=False)["out"]
              for role, split in (("retain", "retain"), ("target", "full"))}
    out = {}
    for variant in ("official", "ou"):
        retain = evaluate.run(evaluate.EvaluationSpec(
            models["retain"], "muse-tiny", str(data), "news", variant, root / f"eval-retain-{variant}",
            identity={"role": "retain", "method": "retain"}, progress=False))
        target = evaluate.run(evaluate.EvaluationSpec(
            models["target"], "muse-tiny", str(data), "news", variant, root / f"eval-target-{variant}",
            retain_reference=str(root / f"eval-retain-{variant}"), identity={"role": "target", "method": "target"},
            progress=False))
        out[variant] = (target, retain)
    return out


@pytest.mark.parametrize("variant, scale", [("official", 100.0), ("ou", 1.0)])
def test_target_memorises_forget_articles_and_the_retrained_model_does_not(evaluations, variant, scale):
    target, retain = (document["metrics"] for document in evaluations[variant])
    print(f"\n[{variant}] target {target}\n[{variant}] retrained {retain}")
    assert target["verbmem_forget"] - retain["verbmem_forget"] > 0.15 * scale
    assert target["knowmem_forget"] - retain["knowmem_forget"] > 0.1 * scale
    assert target["privleak"] < -80   # the forget texts are far more likely than the holdout texts
    assert retain["privleak"] == pytest.approx(0.0)  # the retrained model is its own reference
    reference = evaluations[variant][0]["metric_details"]["privleak"]["reference"]
    assert reference.startswith("retrain model evaluation")
