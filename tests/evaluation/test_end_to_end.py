"""tofu-tiny end to end on CPU: fine-tune target and retain, evaluate both, check the benchmark works."""
import json
from concurrent.futures import ProcessPoolExecutor
import multiprocessing

import pytest

from common import contract


def _finetune(args):
    import torch

    torch.set_num_threads(1)
    from evaluation import finetune

    data, split, out = args
    return finetune.run("tofu-tiny", data, split, "tiny-llama", out, progress=False)


@pytest.mark.slow
def test_tofu_tiny_target_memorises_and_retain_does_not(tiny_folder, tmp_path):
    from evaluation import evaluate

    jobs = [(str(tiny_folder), "full", str(tmp_path / "target")), (str(tiny_folder), "retain90", str(tmp_path / "retain"))]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        target_run, retain_run = pool.map(_finetune, jobs)
    assert target_run["train_result"]["status"] == "ok" and target_run["examples"] == 500 + 40
    card = json.loads((tmp_path / "target" / "ubench_model.json").read_text())
    assert card["prompt_format"] == "phi" and card["finetune"]["split"] == "full"

    retain = evaluate.run(str(tmp_path / "retain"), "tofu-tiny", str(tiny_folder), "forget10", "full",
                          tmp_path / "eval_retain", identity={"role": "retain", "method": "retain"}, progress=False)
    train_result = tmp_path / "target" / "train_status.json"
    target = evaluate.run(str(tmp_path / "target"), "tofu-tiny", str(tiny_folder), "forget10", "full",
                          tmp_path / "eval_target", retain_reference=str(tmp_path / "eval_retain"),
                          train_result=str(train_result), identity={"role": "target", "method": "target"},
                          progress=False)
    t, r = target["metrics"], retain["metrics"]
    assert t["forget_rouge"] >= 0.8
    assert r["forget_rouge"] <= t["forget_rouge"] - 0.3
    assert r["forget_prob"] < t["forget_prob"] - 0.3
    assert t["forget_quality"] < 0.05
    assert t["mia_mink_auc"] > 0.8 and t["privleak"] < -50 and not target["flags"]["privleak_reference_fallback"]
    assert t["model_utility"] > 0.3 and t["retain_rouge"] >= 0.8
    assert target["cost"]["optimizer_steps"] == target_run["train_result"]["optimizer_steps"]
    assert target["cost"]["sequences_scored"] > 0 and target["cost"]["prompts_generated"] == 140
    on_disk = contract.read_metrics(tmp_path / "eval_target" / "metrics.json")
    assert on_disk["evaluator"]["variant"] == "full" and on_disk["evaluator"]["max_new_tokens"] == 200
    assert set(on_disk["metric_details"]["model_utility_components"]) == {
        f"{s}_{k}" for s in ("retain", "ra", "wf") for k in ("prob", "rouge", "truth_ratio")}
    import pandas as pd

    table = pd.read_parquet(tmp_path / "eval_target" / "per_item.parquet")
    assert {"truth_ratio", "mia_mink", "mia_minkpp", "generation", "eval_set"} <= set(table.columns)
