"""Objective variants as each paper ran them, the configs that use them, and the reference forward
under autocast."""
from pathlib import Path

import pytest
import torch

from methods import tokens
from methods.data import collate
from methods.registry import OBJECTIVES
from methods.train import TrainConfig, train
from tests.methods.conftest import make_streams, tiny_llama
from tests.methods.test_objectives import BATCHES, FixedLogits, hf_mean, per_token_ce, reference

REPO = Path(__file__).resolve().parents[2]


def test_forget_only_variants_keep_the_forget_term_and_drop_retain():
    model = FixedLogits(4)
    for name, full in (("npo_forget", "npo"), ("wga_forget", "wga"), ("simnpo_forget", "simnpo"),
                       ("idknll_forget", "idknll")):
        only, with_retain = OBJECTIVES.get(name)(), OBJECTIVES.get(full)()
        assert set(only.weights()) == {"forget"} and "retain" not in only.streams and not only.retain_is_nll
        forget = only.losses(model, BATCHES, reference)
        assert set(forget) == {"forget"}
        torch.testing.assert_close(forget["forget"], with_retain.losses(model, BATCHES, reference)["forget"])
    assert OBJECTIVES.get("simnpo_forget")().weights() == {"forget": 1.0}  # GRU's weight, not OU's 0.125


def test_idkdpo_matches_its_formula():
    model = FixedLogits(5)
    ce = per_token_ce(model.logits.detach())
    ref_ce = per_token_ce(reference(None))
    # every stream is the same batch here: idk and answer share NLLs, so the margin is 0 → loss (2/β)·log 2
    objective = OBJECTIVES.get("idkdpo")(beta=0.5)
    out = objective.losses(model, BATCHES, reference)
    assert objective.needs_reference and objective.aligned_streams == ("forget_idk",)
    assert out["forget"].item() == pytest.approx(2 / 0.5 * torch.log(torch.tensor(2.0)).item(), rel=1e-6)
    assert out["retain"].item() == pytest.approx(hf_mean(ce), rel=1e-6)
    # with distinct answers: −(2/β)·mean log σ(β·[(−NLL_idk + NLL_ref,idk) − (−NLL_a + NLL_ref,a)])
    from methods.objectives.idkdpo import idk_dpo_loss

    nll = torch.tensor([sum(r) for r in ce])
    ref = torch.tensor([sum(r) for r in ref_ce])
    shifted = nll + torch.tensor([1.0, -2.0])
    expected = -(2 / 0.5) * torch.nn.functional.logsigmoid(0.5 * ((ref - shifted) - (ref - nll))).mean()
    torch.testing.assert_close(idk_dpo_loss(shifted, ref, nll, ref, 0.5), expected)


def test_idkdpo_trains_and_lowers_the_refusal_nll_relative_to_the_answer(tmp_path):
    streams = make_streams()
    model = tiny_llama()
    fixed = {name: collate(streams[name][:8], 0) for name in ("forget", "forget_idk")}

    def margin():
        with torch.no_grad():
            nll = {n: tokens.sequence_nll(tokens.logits_of(model, b), b["labels"]).mean().item() for n, b in fixed.items()}
        return nll["forget"] - nll["forget_idk"]  # grows when the refusal becomes likelier than the answer

    before = margin()
    config = TrainConfig(objective="idkdpo", lr=5e-3, max_steps=4, batch_size=4, objective_args={"beta": 0.1})
    assert train(model, streams, config, tmp_path, pad_token_id=0, progress=False).status == "ok"
    assert margin() > before


def test_npo_log_ratio_is_zero_at_step_zero_under_bf16_autocast():
    """The loop runs the trained model and the frozen reference under the same autocast
    (methods.precision), so NPO's log-ratio is exactly 0 before the first update."""
    from methods import precision
    from methods.parametrizations.full import Full

    parametrization = Full()
    model = parametrization.prepare(tiny_llama(), needs_reference=True)
    batch = collate(make_streams()["forget"][:4], 0)
    with precision.autocast(torch.device("cpu"), "bfloat16"):
        nll = tokens.sequence_nll(tokens.logits_of(model, batch), batch["labels"])
        ref = tokens.sequence_nll(parametrization.reference_logits(model, batch), batch["labels"])
    assert torch.equal(nll - ref, torch.zeros_like(nll))
    # the reference outside the autocast would differ: the test can fail
    plain = tokens.sequence_nll(parametrization.reference_logits(model, batch), batch["labels"])
    assert not torch.equal(nll, plain)


def _runs(path):
    from workflows import grid

    return grid.build(grid.load_config(REPO / path)).runs


def test_gru_config_uses_official_step_counts_and_branches():
    runs = _runs("config/paper/gru_tofu.yaml")
    steps = {run.split: run.hyperparameters["max_steps"] for run in runs}
    assert steps == {"forget10": 62, "forget05": 31, "forget01": 6}  # floor(5·N_f) // 32
    pairs = {(run.objective, run.rectifier) for run in runs}
    assert {("ga", "gru-ce"), ("graddiff", "gru"), ("npo_kl", "gru-kl"), ("simnpo_forget", "gru-ce"),
            ("wga_forget", "gru-ce")} <= pairs
    simnpo = next(r for r in runs if r.objective == "simnpo" and r.rectifier == "none")
    assert simnpo.hyperparameters["objective_args"] == {"beta": 0.1, "forget_weight": 1.0, "retain_weight": 0.1,
                                                        "delta": 0.0}


def test_geffect_config_is_forget_only_with_official_steps():
    runs = _runs("config/paper/geffect_tofu.yaml")
    assert {run.objective for run in runs} == {"ga", "graddiff", "npo_forget", "wga_forget", "tnpo", "wtnpo",
                                               "idknll_forget"}
    assert {run.split: run.hyperparameters["max_steps"] for run in runs} == {
        "forget10": 125, "forget05": 62, "forget01": 12}


def test_geffect_config_matches_its_code_defaults_warmup_and_retain_holdout():
    """G-effect forget2.py: warmup_steps = max(1, N_f // 16) (one epoch, rounded down), npo's β 0.5
    when hyper_param is None, and TextForgetDatasetQA2 trains on retain rows [400:] only."""
    runs = _runs("config/paper/geffect_tofu.yaml")
    rows = {"forget01": 40, "forget05": 200, "forget10": 400}
    for run in runs:
        hyper = run.hyperparameters
        assert hyper["warmup_steps"] == max(1, rows[run.split] // 16) and not hyper.get("warmup_ratio")
        assert hyper["corpus"] == {"retain_holdout": 400}
        if run.objective == "npo_forget":
            assert hyper["objective_args"]["beta"] == 0.5


def test_tofu_retain_holdout_keeps_the_first_rows_out_of_training(tmp_path):
    from evaluation import benchmarks
    from evaluation.benchmarks.tofu import tiny as tofu_tiny

    bench = benchmarks.get("tofu-tiny")
    data = bench.open(tofu_tiny.write(tmp_path / "data"))
    full = bench.corpora_for_run(data, "forget10", None)["retain"].items
    held = bench.corpora_for_run(data, "forget10", {"retain_holdout": 7})["retain"].items
    assert held == full[7:] and len(full) > 7
    for bad in (-1, len(full), 2.5, True):
        with pytest.raises(ValueError, match="retain_holdout must be an integer"):
            bench.corpora_for_run(data, "forget10", {"retain_holdout": bad})


def test_rmu_wmdp_extension_uses_official_optimizer_settings():
    from workflows import grid

    config = grid.load_yaml(REPO / "config/extensions/rmu_wmdp_zephyr.yaml")
    hyper = config["extra_experiments"][0]["hyperparameters"]
    assert hyper["max_grad_norm"] is None and hyper["weight_decay"] == 0.01


@pytest.mark.parametrize("objective,rectifier", [("ga", "gru-ce"), ("npo_kl", "gru-kl"), ("simnpo_forget", "gru-ce")])
def test_gru_branches_run_through_the_loop_and_log_the_constraint_cosine(tmp_path, objective, rectifier):
    import json

    config = TrainConfig(objective=objective, rectifier=rectifier, lr=1e-3, max_steps=2, batch_size=4)
    assert train(tiny_llama(), make_streams(), config, tmp_path, pad_token_id=0, progress=False).status == "ok"
    rows = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert all(isinstance(r["cos_update_constraint"], float) for r in rows)
