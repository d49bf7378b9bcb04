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


@pytest.fixture(scope="module")
def finetuned(tiny_folder, tmp_path_factory):
    """The target (fine-tuned on full) and the retain model (on retain90), trained side by side."""
    root = tmp_path_factory.mktemp("finetuned")
    jobs = [(str(tiny_folder), "full", str(root / "target")), (str(tiny_folder), "retain90", str(root / "retain"))]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        target_run, retain_run = pool.map(_finetune, jobs)
    return root, target_run, retain_run


@pytest.mark.slow
def test_tofu_tiny_target_memorises_and_retain_does_not(tiny_folder, finetuned, tmp_path):
    from evaluation import evaluate

    models_root, target_run, retain_run = finetuned
    assert target_run["train_result"]["status"] == "ok" and target_run["examples"] == 500 + 40
    card = json.loads((models_root / "target" / "ubench_model.json").read_text())
    assert card["prompt_format"] == "phi" and card["finetune"]["split"] == "full"

    retain = evaluate.run(evaluate.EvaluationSpec(
        str(models_root / "retain"), "tofu-tiny", str(tiny_folder), "forget10", "full", tmp_path / "eval_retain",
        identity={"role": "retain", "method": "retain"}, progress=False))
    train_result = models_root / "target" / "train_status.json"
    target = evaluate.run(evaluate.EvaluationSpec(
        str(models_root / "target"), "tofu-tiny", str(tiny_folder), "forget10", "full", tmp_path / "eval_target",
        retain_reference=str(tmp_path / "eval_retain"), train_result=str(train_result),
        identity={"role": "target", "method": "target"}, progress=False))
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
    assert on_disk["evaluator"]["generation_backend"] == "greedy-evict"  # CPU: auto falls back, saying why
    assert on_disk["evaluator"]["generation_backend_selection"]["backend"] == "transformers"
    assert on_disk["evaluator"]["generation_backend_selection"]["requested"] == "auto"
    assert set(on_disk["metric_details"]["model_utility_components"]) == {
        f"{s}_{k}" for s in ("retain", "ra", "wf") for k in ("prob", "rouge", "truth_ratio")}
    import pandas as pd

    table = pd.read_parquet(tmp_path / "eval_target" / "per_item.parquet")
    assert {"truth_ratio", "mia_mink", "mia_minkpp", "generation", "eval_set"} <= set(table.columns)


@pytest.mark.slow
def test_grun_gates_open_on_forget_and_stay_shut_on_retain(tiny_folder, finetuned, tmp_path):
    """GRUN acceptance on tofu-tiny: NPO + GRU through the gated edits of the fine-tuned target."""
    import torch

    from evaluation import models
    from evaluation.benchmarks.tofu.data import TofuData
    from evaluation.encoding import encode_qa
    from methods.data import collate
    from methods.parametrizations.grun import prompt_end_from_labels
    from methods.train import TrainConfig, train

    torch.set_num_threads(1)
    model, tokenizer, fmt = models.load_model(str(finetuned[0] / "target"))
    data = TofuData(tiny_folder)
    streams = {name: [encode_qa(tokenizer, fmt, row["question"], row["answer"], 64) for row in data[split]]
               for name, split in (("forget", "forget10"), ("retain", "retain90"))}
    base = {k: v.clone() for k, v in model.state_dict().items()}
    config = TrainConfig(objective="npo", rectifier="gru", parametrization="grun", lr=4e-3, max_steps=200,
                         batch_size=16, scheduler="constant", seed=0, objective_args={"beta": 0.1},
                         parametrization_args={"layers": [2, 3], "rank": 4, "gate": "mlp_3", "gate_weight": 10.0})
    result = train(model, streams, config, tmp_path / "run", tokenizer.pad_token_id, progress=False)
    assert result.status == "ok", result.reason
    assert all(torch.equal(v, base[k]) for k, v in model.state_dict().items() if k in base)

    def mean_gate(examples):
        batch = collate(examples, tokenizer.pad_token_id)
        ends = prompt_end_from_labels(batch["labels"], batch["attention_mask"])
        edits = model.grun
        with torch.no_grad(), edits.recording() as records, edits.at_positions(batch["input_ids"], ends):
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return torch.sigmoid(torch.cat(records[id(batch["input_ids"])])).mean().item()

    model.eval()
    forget_gate, retain_gate = mean_gate(streams["forget"]), mean_gate(streams["retain"])
    assert forget_gate > 0.8 and retain_gate < 0.2, (forget_gate, retain_gate)


@pytest.mark.slow
def test_rmu_moves_forget_activations_toward_the_control_vector(tiny_folder, finetuned, tmp_path):
    """RMU acceptance on the tiny-llama preset fine-tuned on tofu-tiny: layer 2 of 4 hooked, only the
    down_proj weights of blocks 0-2 train (the scaled analogue of the WMDP recipe's 5-7 of 32)."""
    import torch

    from evaluation import models
    from evaluation.benchmarks.tofu.data import TofuData
    from evaluation.encoding import encode_qa
    from methods.data import collate
    from methods.objectives.rmu import block_output, control_vector
    from methods.train import TrainConfig, train

    torch.set_num_threads(1)
    model, tokenizer, fmt = models.load_model(str(finetuned[0] / "target"))
    data = TofuData(tiny_folder)
    streams = {name: [encode_qa(tokenizer, fmt, row["question"], row["answer"], 64) for row in data[split]]
               for name, split in (("forget", "forget10"), ("retain", "retain90"))}
    layer, coeff = 2, 6.5
    target = coeff * control_vector(model.config.hidden_size, 42, "cpu")

    def distance(examples):
        with torch.no_grad():
            hidden = block_output(model, collate(examples, tokenizer.pad_token_id), layer)
        return (hidden - target).pow(2).mean().item()

    before = {k: v.clone() for k, v in model.state_dict().items()}
    forget_start, retain_start = distance(streams["forget"]), distance(streams["retain"][:100])
    config = TrainConfig(objective="rmu", parametrization="subset", lr=2e-2, max_steps=100, batch_size=8,
                         scheduler="constant", seed=0,
                         objective_args={"layer": layer, "steering_coeff": coeff, "retain_weight": 10.0,
                                         "mask": "none", "seed": 42},
                         parametrization_args={"params": ["model.layers.[0-2].mlp.down_proj.weight"]})
    result = train(model, streams, config, tmp_path / "run", tokenizer.pad_token_id, progress=False)
    assert result.status == "ok", result.reason
    forget_end, retain_end = distance(streams["forget"]), distance(streams["retain"][:100])
    assert forget_end < 0.85 * forget_start, (forget_start, forget_end)
    assert forget_end / forget_start < retain_end / retain_start  # forget moves more than retain
    changed = sorted(k for k in before if not torch.equal(before[k], model.state_dict()[k]))
    assert changed == [f"model.layers.{i}.mlp.down_proj.weight" for i in range(3)]


@pytest.mark.slow
def test_evaluate_run_records_grun_gates_on_the_final_model(tiny_folder, finetuned, tmp_path):
    """`ubench evaluate-run` of a GRUN run: the gates are measured on the model the evaluation loaded
    (the final one, before trajectory snapshots replace its edits), written once into metric_details."""
    from workflows import commands

    models_root, _, _ = finetuned
    spec = {"benchmark": "tofu-tiny", "split": "forget10", "model": "tiny-llama", "objective": "graddiff",
            "rectifier": "none", "parametrization": "grun", "seed": 0, "prompt_format": None,
            "hyperparameters": {"lr": 2e-2, "max_steps": 4, "evaluate_every": 2, "max_length": 64,
                                "batch_size": 8, "grad_accum": 1, "scheduler": "constant",
                                "parametrization_args": {"layers": [2, 3], "rank": 4, "gate": "linear"}}}
    out = tmp_path / "run"
    commands.unlearn(spec, str(tiny_folder), str(models_root / "target"), out / "model", out / "log.jsonl",
                     out / "result.json", progress=False)
    document = commands.evaluate_run(spec, str(out / "model"), out / "result.json", str(tiny_folder), out / "eval",
                                     retain_reference=None, progress=False)
    gates = document["metric_details"]["grun_gates"]
    assert gates["n_forget"] > 0 and gates["n_retain"] > 0 and 0.0 <= gates["auc"] <= 1.0
    assert [p["step"] for p in document["trajectory"]["points"]] == [2, 4]
    on_disk = contract.read_metrics(out / "eval" / "metrics.json")
    assert on_disk["metric_details"]["grun_gates"] == gates


@pytest.mark.slow
def test_prompt_attack_evaluates_beside_a_retain_reference_scored_without_it(tiny_folder, finetuned, tmp_path):
    # The prefix changes the prompt, so the plain retain reference cannot serve forget quality's KS
    # test (its prompt-template check refused every prompt-attack job of `make demo`): the attacked row
    # is evaluated without it, forget quality null and said so; the matched metric stays.
    from evaluation import evaluate
    from workflows import attack_commands

    models_root, _, _ = finetuned
    evaluate.run(evaluate.EvaluationSpec(
        str(models_root / "retain"), "tofu-tiny", str(tiny_folder), "forget10", "full", tmp_path / "eval_retain",
        identity={"role": "retain", "method": "retain"}, progress=False))
    spec = {"benchmark": "tofu-tiny", "dtype": "float32", "hyperparameters": {}, "model": "tiny-llama",
            "prompt_format": None, "role": "target", "seed": 0, "split": "forget10"}
    entry = attack_commands.entry_from_json('{"name": "prompt", "variant": "prefix", "args": {}, "scope": "trajectory"}')
    document = attack_commands.evaluate_attack(spec, entry, str(models_root / "target"), None, None, str(tiny_folder),
                                               tmp_path / "prefix", variant="full",
                                               retain_reference=str(tmp_path / "eval_retain"))
    assert document["status"]["state"] == "ok"
    assert document["metrics"]["forget_quality"] is None and document["metrics"]["forget_prob"] is not None
    assert "not used" in document["metric_details"]["attack"]["retain_reference"]
    assert document["evaluator"]["prompt_template"]["answer_prefix"] == "Sure, here is the answer: "
    # The retain model scored under the same prefix (the DAG's evaluate_attack_reference) is the
    # reference a prompt-attacked row's forget quality is measured against.
    retain_spec = {**spec, "role": "retain"}
    attack_commands.evaluate_attack(retain_spec, entry, str(models_root / "retain"), None, None, str(tiny_folder),
                                    tmp_path / "retain_prefix", variant="full",
                                    retain_reference=str(tmp_path / "eval_retain"))
    assert attack_commands.attacked_alike(tmp_path / "retain_prefix", entry)
    assert not attack_commands.attacked_alike(tmp_path / "eval_retain", entry)
    against = attack_commands.evaluate_attack(spec, entry, str(models_root / "target"), None, None, str(tiny_folder),
                                              tmp_path / "prefix_fq", variant="full",
                                              retain_reference=str(tmp_path / "retain_prefix"))
    assert 0.0 <= against["metrics"]["forget_quality"] <= 1.0
    assert "retain_reference" not in against["metric_details"]["attack"]
    assert against["metrics"]["forget_prob"] == document["metrics"]["forget_prob"]
