"""The metric meta-evaluation end to end through the DAG on a 3 + 3 pool (tofu-tiny, a seconds-scale
base fine-tuned one epoch per recipe): the pool models are fine-tuned and evaluated by the existing
rules without any unlearning run of their own, one attacked run gives robustness, and the meta_eval
rule writes metric_table.json by the output contract."""
from __future__ import annotations

import json

import pytest
import yaml

from evaluation import benchmarks, models
from evaluation.benchmarks.tofu import tiny as tofu_tiny
from evaluation.benchmarks.tofu.data import vocabulary_texts

from tests.workflows.conftest import REPO, snakemake

POOL = ["m0", "m1", "m2"]
PARAPHRASED = "m2"
SCORES = ("faithfulness", "Q", "R", "HM")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("meta_eval_dag")
    data_dir = tofu_tiny.write(root / "tofu-tiny-for-base")
    base = models.build_tiny_llama(vocabulary_texts(benchmarks.get("tofu-tiny").open(data_dir)),
                                   root / "base", hidden_size=64, intermediate_size=128,
                                   num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    pool_model = {"base": str(base), "target": "finetune", "retain": "finetune"}
    config = {
        "threads": 1, "evaluation": {"batch_size": 64}, "leaderboard": {"build": True, "out_dir": "site"},
        "models": {name: {**pool_model, "finetune": {"preset": "tofu-tiny", "epochs": 1, "seed": k,
                                                     "lr": [3e-3, 2e-3, 4e-3][k]}}
                   for k, name in enumerate(POOL)},
        "experiments": [{"benchmark": "tofu-tiny", "splits": ["forget10"], "models": ["m0"],
                         "objectives": ["ga"], "rectifiers": ["none"],
                         "hyperparameters": {"lr": 1e-3, "max_steps": 2, "batch_size": 8, "max_length": 64,
                                             "scheduler": "constant"},
                         "attacks": [{"name": "quantize", "variant": "int8", "scope": "all", "args": {"group_size": 64}},
                                     {"name": "relearn", "variant": "forget-all", "scope": "all",
                                      "args": {"lr": 3e-3, "max_steps": 2, "batch_size": 8}}]}],
        "meta_eval": {"bootstrap": {"samples": 50}, "benchmarks": {"tofu-tiny": {
            "split": "forget10",
            "P": {"description": "targets", "members": [{"role": "target", "models": POOL}]},
            "N": {"description": "retain models", "members": [{"role": "retain", "models": POOL}]},
            "robustness": {"quantize": "quantize-int8", "relearn": "relearn-forget-all"},
            "replication": {"reference": "a published ordering", "checks": [
                {"claim": "ES at least as faithful as the median", "score": "faithfulness",
                 "test": "at_or_above_median", "metrics": ["extraction_strength"],
                 "among": ["extraction_strength", "forget_prob", "forget_rouge"]}]}}}},
    }
    # one P member learns the forget questions with their paraphrased answers (its retain model cannot)
    config["models"][PARAPHRASED]["finetune"]["target"] = {"paraphrased_forget": "forget10"}
    (root / "meta.yaml").write_text(yaml.safe_dump(config))
    run = snakemake("--cores", "2", "--configfile", str(root / "meta.yaml"), "--directory", str(root),
                    "--workflow-profile", str(REPO / "profiles" / "default"), timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return root


@pytest.mark.slow
def test_metric_table_follows_the_contract(finished):
    table = json.loads((finished / "results" / "meta_eval" / "tofu-tiny" / "metric_table.json").read_text())
    assert (table["benchmark"], table["split"]) == ("tofu-tiny", "forget10")
    assert table["pools"]["P"]["models"] == 3 and table["pools"]["N"]["models"] == 3
    assert table["robustness_models"] == 1
    assert set(table["bootstrap"]) >= {"samples", "level", "seed", "over"}
    assert set(table["definitions"]) >= {"faithfulness", "Q", "R", "HM", "lower_is_better"}
    declared = {info.name: info.better for info in benchmarks.get("tofu-tiny").metrics}
    assert {row["metric"] for row in table["metrics"]} == set(declared)  # the full metric scope
    assert sum(row["headline"] for row in table["metrics"]) == 1
    for row in table["metrics"]:
        assert row["direction"] == declared[row["metric"]]
        assert set(row) >= {"metric", "direction", "headline", *SCORES, "n"}
        for score in SCORES:
            block = row[score]
            if block is not None and block["value"] is not None:
                assert 0.0 <= block["value"] <= 1.0, (row["metric"], score, block)
    prob = next(row for row in table["metrics"] if row["metric"] == "forget_prob")
    assert prob["n"]["faithfulness"] == 6 and prob["n"]["Q"] == 1 and prob["n"]["R"] == 1
    assert table["replication"]["checks"][0]["holds"] in (True, False)
    # the headline forget quality is relative to a retain reference: recomputed against one (N's first)
    quality = next(row for row in table["metrics"] if row["metric"] == "forget_quality")
    assert quality["headline"] and quality["faithfulness"]["value"] is not None
    assert "common retain reference" in quality["note"] and quality["n"]["faithfulness"] == 5


@pytest.mark.slow
def test_a_paraphrase_trained_target_is_in_pool_p(finished):
    cards = {card.parent: json.loads(card.read_text()) for card in (finished / "work").rglob(models.MODEL_CARD)}
    corpora = {str(folder.relative_to(finished)): card["finetune"]["corpus"]
               for folder, card in cards.items() if "finetune" in card}
    paraphrased = [folder for folder, corpus in corpora.items() if "forget10 answers paraphrased" in corpus]
    assert len(paraphrased) == 1 and f"/{PARAPHRASED}/" in f"/{paraphrased[0]}/", corpora
    assert len(corpora) == 2 * len(POOL)  # every target and retain model; only one target paraphrased


@pytest.mark.slow
def test_pool_models_are_not_unlearned_and_rerun_does_nothing(finished):
    assert not list((finished / "results" / "tofu-tiny" / "forget10" / "m1").glob("*/seed*"))
    run = snakemake("-n", "--cores", "1", "--configfile", str(finished / "meta.yaml"), "--directory", str(finished))
    assert run.returncode == 0 and "Nothing to be done" in run.stdout + run.stderr
