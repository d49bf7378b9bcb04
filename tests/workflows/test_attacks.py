"""Attacks in the grid, the DAG and the result contract: config errors name the allowed values,
a diverged run's attacks are not applicable, the board's recovery and worst case."""
from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from common import contract
from leaderboard import attacks as board_attacks
from workflows import attack_commands, grid
from workflows.layout import Layout

from tests.workflows.conftest import REPO, job_counts, snakemake

ATTACKS = [{"name": "quantize", "variant": "int4"},
           {"name": "relearn", "variant": "forget-split", "args": {"lr": 1.0e-3, "max_steps": 5}},
           {"name": "prompt", "variant": "prefix"}]


def _config(attacks, benchmark="tofu-tiny", split="forget10"):
    return {"models": {"m": {"base": "tiny-llama"}},
            "experiments": [{"benchmark": benchmark, "splits": [split], "models": ["m"], "objectives": ["ga"],
                             "rectifiers": ["none", "gru"], "attacks": attacks}]}


@pytest.mark.parametrize("attacks, message", [
    ([{"name": "quantise", "variant": "int4"}], r"attacks\[0\]: unknown attack 'quantise'; available: prompt, quantize, relearn"),
    ([{"name": "quantize", "variant": "int2"}], r"attacks\[0\]: attack 'quantize' has no variant 'int2'; variants: int4, int8, nf4"),
    ([{"name": "relearn", "variant": "forget-split", "args": {"learning_rate": 1}}], r"attacks\[0\]: .*does not take argument"),
    ([{"name": "quantize", "variant": "int4"}] * 2, r"attacks\[1\]: quantize-int4 is listed twice"),
    ([{"name": "quantize"}], r"'variant' is a required property"),
    ([{"name": "quantize", "variant": "int4", "scope": "some"}], r"scope"),
    ([{"name": "quantize", "variant": "int8"}, {"name": "prompt", "variant": "prefix", "keep_model": True}],
     r"attacks\[1\]: prompt/prefix changes no weights, so there is no attacked model to keep; remove keep_model"),
    ([{"name": "quantize", "variant": "int8", "keep_model": "yes"}], r"keep_model"),
])
def test_bad_attacks_fail_at_config_load(attacks, message):
    with pytest.raises(grid.GridError, match=message):
        grid.build(_config(attacks))


def test_prompt_prefix_is_refused_where_the_evaluator_ignores_prompt_formats():
    with pytest.raises(grid.GridError, match=r"prompt/prefix applies to benchmarks with prompts_from_format, "
                                             r"not wmdp-tiny"):
        grid.build(_config([{"name": "prompt", "variant": "prefix"}], "wmdp-tiny", "bio"))
    with pytest.raises(grid.GridError, match=r"prompt/in-context applies to benchmarks with prompts_from_format, "
                                             r"not muse-tiny"):
        grid.build(_config([{"name": "prompt", "variant": "in-context"}], "muse-tiny", "news"))
    with pytest.raises(grid.GridError, match=r"attacks\[0\]: prompt/in-context: k must be an integer >= 1"):
        grid.build(_config([{"name": "prompt", "variant": "in-context", "args": {"k": 0}}]))
    assert grid.build(_config([{"name": "prompt", "variant": "in-context", "args": {"k": 2, "seed": 1}}])).attacks


def _folder_model(tmp_path, model_type, **sizes):
    folder = tmp_path / model_type
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": model_type, **sizes}))
    return str(folder)


@pytest.mark.parametrize("base, attack, message", [
    ("gpt2", {"name": "quantize", "variant": "int4"},
     r"experiments\[0\]\.attacks: quantize-int4 cannot attack model 'm': model type 'gpt2' keeps its projections in transformers' Conv1D"),
    ("smollm2-135m", {"name": "quantize", "variant": "int4"},
     r"quantize-int4 cannot attack model 'm': hidden_size 576 .* not a multiple of the RTN group size 128; set `args: \{group_size: 64\}`"),
])
def test_an_architecture_the_quantizer_cannot_handle_is_refused_before_any_job(tmp_path, base, attack, message):
    config = _config([attack])
    config["models"]["m"]["base"] = _folder_model(tmp_path, "gpt2", hidden_size=64, intermediate_size=256) \
        if base == "gpt2" else base
    with pytest.raises(grid.GridError, match=message):
        grid.build(config)


def test_a_group_size_that_divides_the_widths_or_nf4_is_accepted():
    for attack in ({"name": "quantize", "variant": "int4", "args": {"group_size": 64}},
                   {"name": "quantize", "variant": "nf4"}):
        config = _config([attack])
        config["models"]["m"]["base"] = "smollm2-135m"
        assert grid.build(config).attacks


def test_prompt_attacked_rows_compare_with_the_retain_model_under_the_same_prompt():
    layout = Layout(grid.build(_config(ATTACKS)))
    plain = ["results/tofu-tiny/forget10/m/reference/retain/per_item.parquet"]
    attacked = "results/tofu-tiny/forget10/m/reference/retain/attacks/prompt-prefix/"
    assert layout.retain_for_attack("tofu-tiny", "forget10", "m", "prompt-prefix") == [
        attacked + "per_item.parquet", attacked + "metrics.json"]
    assert layout.retain_for_attack("tofu-tiny", "forget10", "m", "prompt-prefix", "target")[0] == attacked + "per_item.parquet"
    assert layout.retain_for_attack("tofu-tiny", "forget10", "m", "prompt-prefix", "retain") == plain
    assert layout.retain_for_attack("tofu-tiny", "forget10", "m", "quantize-int4") == plain


def test_every_run_gets_every_attack_and_the_leaderboard_waits_for_them():
    g = grid.build(_config(ATTACKS))
    layout = Layout(g)
    assert {run.key: [a.label for a in g.attacks[run.key]] for run in g.runs} == {
        run.key: ["quantize-int4", "relearn-forget-split", "prompt-prefix"] for run in g.runs}
    files = layout.all_attack_metrics()
    assert len(files) == 6 + 6 and set(files) <= set(layout.all_metrics())
    assert "results/tofu-tiny/forget10/m/ga+gru/seed0/attacks/relearn-forget-split/metrics.json" in files
    assert "results/tofu-tiny/forget10/m/reference/retain/attacks/relearn-forget-split/metrics.json" in files
    assert layout.attack_labels(changes_weights=False) == ["prompt-prefix"]
    assert json.loads(g.attacks[g.runs[0].key][1].as_json()) == {**ATTACKS[1], "scope": "trajectory"}


def test_dag_has_attack_jobs_for_attacks_not_applied_in_evaluation_only(tmp_path, monkeypatch):
    from methods.attacks.relearn import Relearn

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(_config(ATTACKS)))
    run = snakemake("-n", "--cores", "1", "--configfile", str(tmp_path / "c.yaml"), "--directory", str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    counts = job_counts(run.stdout)
    # the 2 runs, and the target + retain references, each get 3 attacks, each in its evaluation job
    assert ("attack" not in counts, counts["evaluate_attack"]) == (True, 6)
    assert ("attack_reference" not in counts, counts["evaluate_attack_reference"]) == (True, 6)
    planned = grid.summary(grid.build(_config(ATTACKS)))
    assert {k: planned[k] for k in counts if k in planned} == {k: v for k, v in counts.items() if k in planned}
    # a weight attack that needs a job of its own gets one per run and per reference (`ubench attack`)
    monkeypatch.setattr(Relearn, "applied_in_evaluation", False)
    layout = Layout(grid.build(_config(ATTACKS)))
    assert layout.attack_labels(own_job=True) == ["relearn-forget-split"]
    assert grid.summary(layout.grid)["attack"] == 2 and grid.summary(layout.grid)["attack_reference"] == 2


def test_keep_model_puts_a_weight_attack_in_attack_jobs_that_keep_its_model(tmp_path):
    attacks = [{**ATTACKS[0], "keep_model": True}, *ATTACKS[1:]]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(_config(attacks)))
    run = snakemake("-n", "--cores", "1", "--configfile", str(tmp_path / "c.yaml"), "--directory", str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    counts = job_counts(run.stdout)
    # quantize-int4 on the 2 runs and the 2 references gets attack jobs; relearn and prompt do not
    assert (counts["attack"], counts["evaluate_attack"]) == (2, 6)
    assert (counts["attack_reference"], counts["evaluate_attack_reference"]) == (2, 6)
    g = grid.build(_config(attacks))
    planned = grid.summary(g)
    assert {k: planned[k] for k in counts if k in planned} == {k: v for k, v in counts.items() if k in planned}
    layout = Layout(g)
    assert layout.attack_labels(own_job=True) == ["quantize-int4"]
    # keeping the model is no part of what the attack computes: the same command argument, the same entry
    kept, plain = g.attacks[g.runs[0].key][0], grid.build(_config(ATTACKS)).attacks[g.runs[0].key][0]
    assert kept.keep_model and not plain.keep_model
    assert kept.as_json() == plain.as_json() and kept == plain
    # kept: the attack rules' model output is no temp() (workflows/rules/attack.smk)
    rules = (REPO / "workflows" / "rules" / "attack.smk").read_text()
    assert "model=directory(L.attack_work(\"model\"))" in rules
    assert "model=directory(L.reference_attack_work(\"model\"))" in rules and "temp(" not in rules


def test_the_default_grid_plans_without_attack_rules_when_none_are_listed(tmp_path):
    config = _config([])
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    run = snakemake("-n", "--cores", "1", "--configfile", str(tmp_path / "c.yaml"), "--directory", str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "attack" not in job_counts(run.stdout)


def _spec():
    return {"benchmark": "tofu-tiny", "split": "forget10", "model": "tiny-llama", "objective": "ga",
            "rectifier": "none", "parametrization": "full", "seed": 0, "hyperparameters": {"lr": 1e-3}}


def test_an_attack_on_a_diverged_run_is_recorded_not_applicable(tmp_path):
    train_result = tmp_path / "train_result.json"
    train_result.write_text(json.dumps({"status": "diverged", "diverged_step": 7, "reason": "loss is nan"}))
    entry = attack_commands.entry_from_json(json.dumps(ATTACKS[0]))
    record = attack_commands.attack(_spec(), entry, str(tmp_path / "model"), train_result, None,
                                    tmp_path / "attacked", tmp_path / "attack.json")
    assert record["status"] == "not_applicable" and (tmp_path / "attacked" / attack_commands.MARK).is_file()
    out = tmp_path / "out"
    document = attack_commands.evaluate_attack(_spec(), entry, str(tmp_path / "attacked"), tmp_path / "attack.json",
                                               train_result, None, out, run_results=tmp_path / "run")
    written = contract.read_metrics(out / "metrics.json")
    assert written["metrics"] == document["metrics"] == {} and written["status"]["state"] == "not_applicable"
    assert "step 7" in written["status"]["reason"]
    assert written["identity"]["attack"] == {"name": "quantize", "variant": "int4", "args": {"group_size": 128}}
    assert (out / "per_item.parquet").is_file()


def _attack_document(seed, attacked, unlearned, target, label=("relearn", "forget-split"), state="ok"):
    return {"identity": {"benchmark": "tofu-tiny", "seed": seed, "attack": {"name": label[0], "variant": label[1],
                                                                            "args": {}}},
            "metrics": {"forget_prob": attacked}, "status": {"state": state},
            "metric_details": {"attack": {"basis": {"before": {"forget_prob": unlearned},
                                                    "target": {"forget_prob": target}}}}}


def test_board_recovery_worst_case_and_undone_marks():
    row = {"row_id": "r", "benchmark": "tofu-tiny", "forget_metric": "forget_quality", "metric:forget_prob": 0.2}
    documents = [(None, _attack_document(0, 0.6, 0.2, 1.0)), (None, _attack_document(1, 0.8, 0.2, 1.0)),
                 (None, _attack_document(0, 0.22, 0.2, 1.0, ("quantize", "int4"))),
                 (None, _attack_document(1, None, None, None, ("quantize", "int4"), state="not_applicable"))]
    board_attacks.add_columns([row], {"r": documents})
    assert row["attack:relearn-forget-split:recovery"] == pytest.approx(0.625)  # mean of 0.5 and 0.75
    assert row["attack:relearn-forget-split:recovery:ci_low"] < 0.625 < row["attack:relearn-forget-split:recovery:ci_high"]
    assert row["attack:quantize-int4:recovery"] == pytest.approx(0.025)
    assert row["attack:quantize-int4:status"] == "not_applicable"
    assert row["worst_case_knowledge"] == pytest.approx(0.7) and row["worst_case_attack"] == "relearn-forget-split"
    assert row["undone_by"] == "relearn-forget-split" and row["knowledge_metric"] == "forget_prob"


def test_recovery_is_undefined_when_nothing_was_forgotten():
    assert board_attacks.recovery(0.5, 0.4, 0.4) is None
    assert board_attacks.recovery(0.4, 0.4, 0.9) == 0.0
