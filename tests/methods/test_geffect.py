"""G-effect: per-group values sum to the total and equal inner products of autograd gradients;
GA's unlearning G-effect is −‖∇R_f‖²; rows land in geffect.jsonl; the plot command draws them."""
import json

import pytest
import torch

from methods.analysis.geffect import GEffect, group_of
from methods.data import Schedule, gather
from methods.registry import OBJECTIVES
from methods.train import TrainConfig, train
from tests.methods.conftest import make_streams, tiny_llama

SEED = 3


def first_batches(streams):
    micro, = Schedule({"forget": 12, "retain": 16}, "forget", (), 12, 1, 1, SEED).micro_batches(0)
    return gather(streams, micro, 0, "cpu")


def flat_grad(model, loss):
    model.zero_grad()
    loss.backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()]).clone(), {
        n: p.grad.clone() for n, p in model.named_parameters()}


def run(tmp_path, objective, streams, **objective_args):
    config = TrainConfig(objective=objective, lr=1e-3, max_steps=3, batch_size=12, max_grad_norm=None,
                         scheduler="constant", seed=SEED, objective_args=objective_args)
    analyzer = GEffect(every=2)
    result = train(tiny_llama(), streams, config, tmp_path, pad_token_id=0, analyzers=[analyzer], progress=False)
    assert result.status == "ok"
    rows = [json.loads(line) for line in (tmp_path / "geffect.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 3] and rows[0]["exact"] is True
    return rows


def test_graddiff_geffect_equals_direct_gradient_inner_products_per_group(tmp_path):
    streams = make_streams()
    rows = run(tmp_path, "graddiff", streams, forget_weight=0.7, retain_weight=1.3)
    row = rows[0]
    for key in ("e_u", "e_r"):
        assert sum(row[key].values()) == pytest.approx(row[f"{key}_total"], rel=1e-9)
        assert set(row[key]) == {"embed", "block0", "block1", "lm_head", "other"}

    model = tiny_llama()
    batches = first_batches(streams)
    losses = OBJECTIVES.get("graddiff")(forget_weight=0.7, retain_weight=1.3).losses(model, batches, None)
    g_l, per_l = flat_grad(model, 0.7 * losses["forget"] + 1.3 * losses["retain"])
    g_f, per_f = flat_grad(model, model(**batches["forget"]).loss)
    g_r, per_r = flat_grad(model, model(**batches["retain"]).loss)
    assert row["e_u_total"] == pytest.approx(torch.dot(g_l.double(), g_f.double()).item(), rel=1e-4)
    assert row["e_r_total"] == pytest.approx(torch.dot(g_l.double(), g_r.double()).item(), rel=1e-4)
    block1 = sum(torch.dot(per_l[n].reshape(-1).double(), per_f[n].reshape(-1).double()).item()
                 for n in per_l if group_of(n) == "block1")
    assert row["e_u"]["block1"] == pytest.approx(block1, rel=1e-4)


def test_gradient_ascent_has_negative_unlearning_geffect(tmp_path):
    streams = make_streams()
    row = run(tmp_path, "ga", streams)[0]
    norm_sq = row["grad_norm_risk_forget"] ** 2
    assert row["e_u_total"] == pytest.approx(-norm_sq, rel=1e-5) and row["e_u_total"] < 0
    model = tiny_llama()
    g_f, _ = flat_grad(model, model(**first_batches(streams)["forget"]).loss)
    assert row["e_u_total"] == pytest.approx(-torch.dot(g_f.double(), g_f.double()).item(), rel=1e-4)


def test_geffect_logs_into_train_log_and_rejects_bad_every(tmp_path):
    run(tmp_path, "npo", make_streams())
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert "geffect_u" in log[0] and "geffect_u" not in log[1]
    with pytest.raises(ValueError, match="every"):
        GEffect(every=0)


def test_group_names():
    assert group_of("model.embed_tokens.weight") == "embed"
    assert group_of("model.layers.12.mlp.down_proj.weight") == "block12"
    assert group_of("grun.interventions.20.gate.weight") == "block20"
    assert group_of("lm_head.weight") == "lm_head" and group_of("model.norm.weight") == "other"


def test_plot_command_draws_a_png(tmp_path, capsys):
    from workflows.cli import main
    run(tmp_path, "graddiff", make_streams())
    out = tmp_path / "figs" / "geffect.png"
    assert main(["plot", "geffect", str(tmp_path / "geffect.jsonl"), "--out", str(out), "--title", "graddiff"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileNotFoundError, match="analyzers"):
        main(["--debug", "plot", "geffect", str(tmp_path / "missing.jsonl"), "--out", str(out)])


def test_analyzers_are_built_from_config_names_and_mappings():
    from methods.train import build_analyzer

    assert build_analyzer("geffect").args["every"] == 1
    assert build_analyzer({"name": "geffect", "every": 5}).args["every"] == 5
    with pytest.raises(ValueError, match="lack `name`"):
        build_analyzer({"every": 5})
    with pytest.raises(Exception, match="geffect"):  # unknown names list the registered ones
        build_analyzer("g-effect")
