"""PDU (open-unlearning's primal-dual unlearning, OU src/trainer/unlearn/pdu.py): the logit-flattening
forget loss, the dual variable ascended per micro-batch after the warm-up epochs, required ε."""
import json
import re
from pathlib import Path

import pytest
import torch

from methods import checkpoint, tokens
from methods.registry import OBJECTIVES
from methods.train import TrainConfig, train
from tests.methods.conftest import make_streams, tiny_llama
from tests.methods.test_objectives import BATCHES, LABELS, FixedLogits, B, T

REPO = Path(__file__).resolve().parents[2]


def pdu(**args):
    return OBJECTIVES.get("pdu")(**{"retain_loss_eps": 0.3, **args})


def test_forget_loss_flattens_logit_margins_at_labelled_positions_unshifted():
    model = FixedLogits(3)
    objective = pdu(retain_weight=100.0)
    out = objective.losses(model, BATCHES, None)
    z = model.logits.detach().double()
    values = [float((z[b, t].max() - z[b, t].mean()) ** 2) for b in range(B) for t in range(T) if LABELS[b, t] != -100]
    assert out["forget"].item() == pytest.approx(sum(values) / len(values), rel=1e-6)
    retain = tokens.mean_nll(model.logits, LABELS).item()
    assert out["retain"].item() == pytest.approx(100.0 * (retain - 0.3), rel=1e-6)  # λ·(L_r − ε), weight 1
    assert objective.weights() == {"forget": 1.0, "retain": 1.0} and not objective.retain_is_nll
    out["forget"].backward()
    assert model.logits.grad.abs().sum() > 0


def test_retain_loss_eps_is_required_and_bad_options_are_explained():
    with pytest.raises(ValueError, match="pdu needs retain_loss_eps"):
        OBJECTIVES.get("pdu")()
    with pytest.raises(ValueError, match="dual_update_upon must be one of"):
        pdu(dual_update_upon="epoch")
    with pytest.raises(ValueError, match="dual_step_size must be >= 0"):
        pdu(dual_step_size=-1)
    assert OBJECTIVES.required_arguments("pdu") == ("retain_loss_eps",)


def test_grid_check_refuses_a_pdu_run_without_retain_loss_eps(tmp_path):
    from workflows import grid

    text = (REPO / "config" / "paper" / "ou_tofu.yaml").read_text()
    assert "retain_loss_eps: 0.3, " in text
    broken = tmp_path / "ou_tofu.yaml"
    broken.write_text(text.replace("retain_loss_eps: 0.3, ", ""))
    with pytest.raises(grid.GridError, match="pdu needs retain_loss_eps"):
        grid.build(grid.load_config(str(broken)))
    no_args = tmp_path / "no_args.yaml"
    without, count = re.subn(r",\s*objective_args: \{retain_loss_eps[^}]*\}", "", text)
    assert count == 1
    no_args.write_text(without)  # no objective_args at all: still checked (PDU declares required_args)
    with pytest.raises(grid.GridError, match="pdu needs retain_loss_eps"):
        grid.build(grid.load_config(str(no_args)))


def test_dual_variable_ascends_per_micro_batch_after_the_warmup_epochs():
    model = FixedLogits(4)
    objective = pdu(retain_loss_eps=0.5, retain_weight=2.0, dual_step_size=3.0, dual_warmup_epochs=2)
    retain = tokens.mean_nll(model.logits, LABELS).item()

    def micro_batch(epoch, counted=True):
        objective.begin_step(0, epoch)
        out = objective.losses(model, BATCHES, None)
        objective.end_micro_batch(counted)
        return out["retain"].item()

    for epoch in (0, 1):  # warm-up: λ stays at its start value
        assert micro_batch(epoch) == pytest.approx(2.0 * (retain - 0.5), rel=1e-6)
        assert objective.dual == 2.0 and not objective.log_state()["dual_updating"]
    dual = 2.0
    for _ in range(3):  # each micro-batch's loss uses λ before its own update (OU final_loss_value)
        assert micro_batch(2) == pytest.approx(dual * (retain - 0.5), rel=1e-6)
        dual = max(0.0, dual + 3.0 * (retain - 0.5))
        assert objective.dual == pytest.approx(dual)
    micro_batch(2, counted=False)  # a zero-weight padding repeat under FSDP moves nothing
    assert objective.dual == pytest.approx(dual) and objective.updates == 3
    state = objective.log_state()
    assert state["dual"] == pytest.approx(dual) and state["retain_loss"] is None  # no counted micro-batch this step
    satisfied = pdu(retain_loss_eps=retain + 10, retain_weight=1.0, dual_step_size=1.0, dual_warmup_epochs=0)
    satisfied.begin_step(0, 0)
    satisfied.losses(model, BATCHES, None)
    satisfied.end_micro_batch(True)
    assert satisfied.dual == 0.0  # projected onto λ >= 0
    fixed = pdu(primal_dual=False, dual_warmup_epochs=0)
    fixed.begin_step(0, 9)
    fixed.losses(model, BATCHES, None)
    fixed.end_micro_batch(True)
    assert fixed.dual == 1.0 and fixed.updates == 0


def test_pdu_trains_and_logs_its_dual_variable(tmp_path):
    streams = make_streams()  # 12 forget rows: batch 2 x GA 2 -> 3 steps of 2 micro-batches per epoch
    args = {"retain_loss_eps": 0.0, "retain_weight": 1.0, "dual_step_size": 0.01, "dual_warmup_epochs": 1}
    config = TrainConfig(objective="pdu", lr=1e-3, epochs=2, batch_size=2, grad_accum=2, objective_args=args)
    result = train(tiny_llama(), streams, config, tmp_path, pad_token_id=0, progress=False)
    assert result.status == "ok" and result.optimizer_steps == 6
    rows = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    states = [row["objective_state"] for row in rows]
    assert [s["dual_updating"] for s in states] == [False] * 3 + [True] * 3
    assert all(s["dual"] == 1.0 and s["dual_updates"] == 0 for s in states[:3])
    assert [s["dual_updates"] for s in states[3:]] == [2, 4, 6]  # one per micro-batch
    # ε = 0 keeps every update positive (no projection): λ = 1 + η·Σ micro-batch retain losses
    expected = 1.0 + 0.01 * sum(2 * s["retain_loss"] for s in states[3:])
    assert states[-1]["dual"] == pytest.approx(expected, rel=1e-9)
    assert rows[-1]["losses"]["retain"] == pytest.approx(states[-2]["dual"] * states[-1]["retain_loss"], rel=0.05)


def test_resume_restores_the_dual_variable(tmp_path):
    args = {"retain_loss_eps": 0.0, "dual_step_size": 0.01, "dual_warmup_epochs": 0}
    config = TrainConfig(objective="pdu", lr=1e-3, max_steps=4, batch_size=4, objective_args=args,
                         checkpoint_every=2)
    whole = train(tiny_llama(), make_streams(), config, tmp_path / "whole", pad_token_id=0, progress=False)
    assert whole.status == "ok"
    resumed = train(tiny_llama(), make_streams(), config, tmp_path / "resumed", pad_token_id=0, progress=False,
                    resume_from=checkpoint.checkpoint_dir(tmp_path / "whole", 2))
    assert resumed.status == "ok"
    dual = {name: json.loads((tmp_path / name / "train_log.jsonl").read_text().splitlines()[-1])["objective_state"]
            for name in ("whole", "resumed")}
    assert dual["resumed"]["dual_updates"] == dual["whole"]["dual_updates"] == 4
    assert dual["resumed"]["dual"] == pytest.approx(dual["whole"]["dual"], rel=1e-6)


@pytest.mark.parametrize("rectifier", ["pcgrad", "gru"])
def test_pdu_runs_under_rectifiers(tmp_path, rectifier):
    """Rectifiers see the task 'retain' = λ·(L_r − ε); GRU's constraint is the loop's own retain NLL
    (PDU's retain task is not the plain NLL)."""
    config = TrainConfig(objective="pdu", rectifier=rectifier, lr=1e-3, max_steps=2, batch_size=4,
                         objective_args={"retain_loss_eps": 0.1, "dual_warmup_epochs": 0})
    assert train(tiny_llama(), make_streams(), config, tmp_path, pad_token_id=0, progress=False).status == "ok"
    rows = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert rows[-1]["objective_state"]["dual_updates"] == 2  # 2 steps of one micro-batch
