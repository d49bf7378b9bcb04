"""rwku-tiny acceptance: the fine-tuned tiny Llama answers the forget probes far better than the
untrained one, and unlearning batch 1-4 (NPO) lowers forget scores more than neighbour scores.
Also: the tiny model evaluated on the real RWKU probes of target 1 (CI subset; targets 1-10 in
benchmarks/bench_rwku.py)."""
import json
import time
from pathlib import Path

import pytest

from evaluation import benchmarks, evaluate, finetune, models
from workflows import commands

REPO = Path(__file__).resolve().parents[2]
SHARED_RWKU = REPO.parent / "shared" / "data" / "rwku"
SPLIT = "batch-1-4"
NPO = {"benchmark": "rwku-tiny", "split": SPLIT, "model": "tiny-llama", "objective": "npo", "rectifier": "none",
       "parametrization": "full", "seed": 0,
       "hyperparameters": {"lr": 1.0e-3, "max_steps": 20, "max_length": 64, "batch_size": 8, "grad_accum": 1,
                           "weight_decay": 0.0, "scheduler": "constant", "max_grad_norm": 1.0}}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rwku_tiny_run")
    data = benchmarks.get("rwku-tiny").generate(root / "data")
    finetune.run("rwku-tiny", str(data), "all-targets", "tiny-llama", root / "target", progress=False)
    bench = benchmarks.get("rwku-tiny")
    untrained = models.build_tiny_llama(bench.vocabulary_texts(bench.open(data)), root / "untrained", seed=0)
    tok = models.load_tokenizer(str(untrained))
    bench.prepare_tiny_tokenizer(tok)
    tok.save_pretrained(untrained)
    commands.unlearn(NPO, str(data), str(root / "target"), root / "npo", root / "npo.jsonl", root / "npo.json",
                     progress=False)
    metrics = {name: evaluate.run(str(root / name), "rwku-tiny", str(data), SPLIT, "official", root / f"eval-{name}",
                                  progress=False)["metrics"]
               for name in ("untrained", "target", "npo")}
    return root, data, metrics


@pytest.mark.slow
def test_target_answers_forget_probes_and_unlearning_separates(tiny_run):
    _, _, metrics = tiny_run
    for name, values in metrics.items():
        print(f"{name:9s} " + " ".join(f"{k}={values[k]:.3f}" for k in
                                       ("forget_fb", "forget_qa", "forget_aa", "forget_all", "neighbor_all")))
    untrained, target, npo = metrics["untrained"], metrics["target"], metrics["npo"]
    assert target["forget_all"] > untrained["forget_all"] + 0.25
    assert target["neighbor_all"] > untrained["neighbor_all"] + 0.4
    forget_drop = target["forget_all"] - npo["forget_all"]
    neighbor_drop = target["neighbor_all"] - npo["neighbor_all"]
    print(f"NPO on {SPLIT}: forget_all drop {forget_drop:.3f}, neighbor_all drop {neighbor_drop:.3f}")
    assert forget_drop > 0.15 and forget_drop > neighbor_drop + 0.05
    assert npo["mia_fm_loss"] < target["mia_fm_loss"]    # forget members look less member-like


@pytest.mark.slow
def test_evaluation_output_records_every_variant_field(tiny_run):
    root, data, _ = tiny_run
    document = json.loads((root / "eval-target" / "metrics.json").read_text())
    block = document["evaluator"]
    for key in ("variant", "rouge_package", "generation_budget", "targets_evaluated", "mia_as_set_means",
                "stop_ids_resolved", "fluency_tokenizer", "evaluator", "setting"):
        assert key in block, key
    assert block["targets_evaluated"] == "1-4" and block["setting"] == "batch"
    sago = evaluate.run(str(root / "target"), "rwku-tiny", str(data), SPLIT, "sago", root / "eval-sago",
                        progress=False)
    assert sago["evaluator"]["variant"] == "sago" and "stemming on" in sago["evaluator"]["rouge_package"]
    assert "mmlu" not in sago["metrics"] and 0.0 <= sago["metrics"]["forget_all"] <= 1.0


@pytest.mark.slow
@pytest.mark.shared_data
def test_tiny_model_on_real_rwku_probes_of_target_1(tmp_path):
    if not (SHARED_RWKU / "1_Stephen_King").is_dir():
        pytest.skip(f"real RWKU data not found at {SHARED_RWKU}")
    from evaluation.benchmarks.rwku.data import RwkuData

    bench = benchmarks.get("rwku")
    data = RwkuData.from_folder(SHARED_RWKU)
    texts = [s for t in range(1, 11) for name in ("forget_level1", "forget_level2", "forget_level3",
                                                 "neighbor_level1", "neighbor_level2")
             for row in data.rows(t, name) for s in (row["query"], row["answer"])] + bench.vocabulary_texts(
        RwkuData(data.root, {1: data.target(1)}))
    folder = models.build_tiny_llama(texts, tmp_path / "tiny", seed=0, max_position_embeddings=4096)
    tok = models.load_tokenizer(str(folder))
    bench.prepare_tiny_tokenizer(tok)
    tok.save_pretrained(folder)
    start = time.perf_counter()
    document = evaluate.run(str(folder), "rwku", str(SHARED_RWKU), "target-1", "official", tmp_path / "eval",
                            progress=False)
    print(f"tiny model, real RWKU target 1, official evaluator: {time.perf_counter() - start:.1f} s, "
          f"cost {document['cost']}")
    items = document["metric_details"]["items"]
    assert items["forget_level1"] == len(data.rows(1, "forget_level1"))
    assert document["evaluator"]["targets_evaluated"] == "1"
    assert set(document["metrics"]) >= {"forget_all", "neighbor_all", "mmlu", "bbh", "fluency", "mia_fm_loss"}
    with pytest.raises(Exception, match=r"retain_mmlu\.json is missing for target 11|forget_mia\.json is missing for target 11"):
        evaluate.run(str(folder), "rwku", str(SHARED_RWKU), "target-11", "official", tmp_path / "eval11",
                     progress=False)
