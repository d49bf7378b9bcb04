"""The attack stage of the DAG on a seconds-scale model: every attack's result lands valid beside
its run, no attacked weights are left on disk unless an entry keeps them (keep_model), the
leaderboard gets the attack columns and a rerun does nothing."""
from __future__ import annotations

import pandas as pd
import pytest
import yaml

from common import contract
from evaluation import benchmarks, models
from evaluation.benchmarks.tofu import tiny as tofu_tiny
from evaluation.benchmarks.tofu.data import vocabulary_texts

from tests.workflows.conftest import REPO, snakemake

ATTACKS = [{"name": "quantize", "variant": "int8"}, {"name": "prompt", "variant": "prefix"},
           {"name": "relearn", "variant": "forget-split", "args": {"lr": 1.0e-3, "max_steps": 2, "batch_size": 8}},
           {"name": "quantize", "variant": "int4", "keep_model": True}]
LABELS = ("quantize-int8", "prompt-prefix", "relearn-forget-split", "quantize-int4")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("attack_dag")
    data_dir = tofu_tiny.write(root / "tofu-tiny-for-target")
    target = models.build_tiny_llama(vocabulary_texts(benchmarks.get("tofu-tiny").open(data_dir)),
                                     root / "target", hidden_size=128, intermediate_size=256,
                                     num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    config = {
        "threads": 1, "evaluation": {"batch_size": 64},
        "models": {"tiny-llama": {"base": "tiny-llama", "target": str(target), "retain": "none"}},
        "experiments": [{"benchmark": "tofu-tiny", "splits": ["forget10"], "models": ["tiny-llama"],
                         "objectives": ["ga"], "rectifiers": ["none"], "attacks": ATTACKS,
                         "hyperparameters": {"lr": 1e-3, "max_steps": 2, "batch_size": 8, "max_length": 64,
                                             "scheduler": "constant"}}],
    }
    (root / "tiny.yaml").write_text(yaml.safe_dump(config))
    run = snakemake("--cores", "2", "--configfile", str(root / "tiny.yaml"), "--directory", str(root),
                    "--workflow-profile", str(REPO / "profiles" / "default"), timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return root


@pytest.mark.slow
def test_attack_results_are_valid_and_attacked_weights_temporary(finished):
    run = finished / "results" / "tofu-tiny" / "forget10" / "tiny-llama" / "ga+none" / "seed0"
    for label in LABELS:
        document = contract.read_metrics(run / "attacks" / label / "metrics.json")
        assert document["status"]["state"] == "ok"
        assert f"{document['identity']['attack']['name']}-{document['identity']['attack']['variant']}" == label
        assert document["metrics"]["forget_prob"] is not None
        assert set(document["metric_details"]["attack"]["basis"]) == {"before", "target"}
        assert len(pd.read_parquet(run / "attacks" / label / "per_item.parquet")) > 0
    reference = finished / "results" / "tofu-tiny" / "forget10" / "tiny-llama" / "reference" / "target" / "attacks"
    for label in LABELS:  # the target reference gets the same attacks (no retain model in this grid)
        document = contract.read_metrics(reference / label / "metrics.json")
        assert (document["identity"]["role"], document["status"]["state"]) == ("target", "ok")
    work = finished / "work" / "runs" / "tofu-tiny" / "forget10" / "tiny-llama" / "ga+none" / "seed0" / "attacks"
    assert [p.name for p in work.iterdir()] == ["quantize-int4"], \
        "weight attacks are applied in their evaluation job: no attacked copy on disk unless kept"
    assert (work / "quantize-int4" / "model" / "config.json").is_file()
    kept = contract.read_metrics(run / "attacks" / "quantize-int4" / "metrics.json")["metric_details"]["attack"]
    assert kept["attacked_model"].endswith("attacks/quantize-int4/model") and kept["record"]["bits"] == 4
    reference_work = finished / "work" / "models" / "tofu-tiny" / "forget10" / "tiny-llama" / "reference-target"
    assert (reference_work / "attacks" / "quantize-int4" / "model" / "config.json").is_file()
    record = contract.read_metrics(run / "attacks" / "quantize-int8" / "metrics.json")["metric_details"]["attack"]
    assert record["record"]["bits"] == 8
    table = pd.read_csv(finished / "site" / "leaderboard.csv")
    row = table[table["role"] == "unlearned"].iloc[0]
    assert len(table[table["role"] == "unlearned"]) == 1  # attacks are columns of their run's row
    assert len(table[table["role"] == "target"]) == 1
    assert table[table["role"] == "target"].iloc[0]["attack:quantize-int8:forget_prob"] is not None
    for label in LABELS:
        assert f"attack:{label}:recovery" in table.columns and f"attack:{label}:forget_prob" in table.columns
    assert row["worst_case_attack"] in LABELS + ("none",)


@pytest.mark.slow
def test_rerun_does_nothing(finished):
    run = snakemake("-n", "--cores", "1", "--configfile", str(finished / "tiny.yaml"), "--directory", str(finished))
    assert run.returncode == 0 and "Nothing to be done" in run.stdout + run.stderr
