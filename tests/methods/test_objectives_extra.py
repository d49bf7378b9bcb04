"""UNDIAL, SatImp, CE-U and the KL-retain variants: formulas written out position by position,
masking of unlabelled positions, and each objective through the loop with a rectifier."""
import math

import pytest
import torch
import torch.nn.functional as F

from methods.data import collate
from methods.objectives.ceu import ceu_loss
from methods.objectives.retain import kl_to_reference
from methods.objectives.satimp import satimp_loss
from methods.objectives.undial import undial_loss
from methods.parametrizations.full import Full
from methods.registry import OBJECTIVES
from methods import tokens
from methods.train import TrainConfig, train
from tests.methods.conftest import make_streams, tiny_llama

V = 7


def toy(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 5, V, generator=g)
    reference = torch.randn(2, 5, V, generator=g)
    labels = torch.tensor([[-100, -100, 3, 1, 4], [-100, 2, 5, 0, -100]])
    return logits, reference, labels


def labelled(labels):
    """(row, t) pairs whose logits at t predict a labelled token labels[row, t+1]."""
    return [(b, t) for b in range(labels.size(0)) for t in range(labels.size(1) - 1) if labels[b, t + 1] != -100]


def test_undial_matches_the_per_position_formula_and_ignores_unlabelled_positions():
    logits, reference, labels = toy()
    beta = 10.0
    terms = []
    for b, t in labelled(labels):
        y = labels[b, t + 1]
        shifted = reference[b, t].clone()
        shifted[y] -= beta
        q = F.softmax(shifted, -1)
        terms.append(-(q * F.log_softmax(logits[b, t], -1)).sum())
    torch.testing.assert_close(undial_loss(logits, reference, labels, beta), torch.stack(terms).mean())
    garbage = logits.clone()
    garbage[0, 0] += 100.0  # position 0 of row 0 predicts a prompt token: must not count
    torch.testing.assert_close(undial_loss(garbage, reference, labels, beta), torch.stack(terms).mean())


def test_satimp_matches_formula_and_its_gradient_is_a_weighted_ascent():
    logits, _, labels = toy(1)
    logits.requires_grad_(True)
    ce, mask = tokens.token_ce(logits, labels)
    loss = satimp_loss(ce, mask, 5.0, 1.0)
    p = torch.exp(-ce.detach())
    manual = -(p ** 5 * (1 - p) * ce)[mask].mean()
    torch.testing.assert_close(loss, manual)
    (grad,) = torch.autograd.grad(loss, logits)
    ce2, _ = tokens.token_ce(logits, labels)
    weights = (p ** 5 * (1 - p)).masked_fill(~mask, 0) / mask.sum()
    (expected,) = torch.autograd.grad(-(weights * ce2).sum(), logits)
    torch.testing.assert_close(grad, expected)


def test_ceu_removes_gold_mass_and_skips_the_first_answer_token():
    logits, _, labels = toy(2)
    positions = labelled(labels)
    kept = [pos for pos in positions if pos not in {(0, 1), (1, 0)}]  # each row's first answer position
    terms = []
    for b, t in kept:
        y = labels[b, t + 1]
        z = logits[b, t].clone()
        z[y] = -math.inf
        q = F.softmax(z, -1)
        assert q[y] == 0
        terms.append(-(q * F.log_softmax(logits[b, t], -1)).sum())
    torch.testing.assert_close(ceu_loss(logits, labels, skip=1), torch.stack(terms).mean())
    assert not torch.allclose(ceu_loss(logits, labels, skip=0), ceu_loss(logits, labels, skip=1))


def test_kl_variants_keep_the_forget_term_and_use_kl_retain():
    streams = make_streams()
    full = Full()
    model = full.prepare(tiny_llama(), needs_reference=True)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))  # so the KL to the reference is not zero
    batches = {"forget": collate(streams["forget"][:4], 0), "retain": collate(streams["retain"][:4], 0)}
    reference = lambda b: full.reference_logits(model, b)
    objective = OBJECTIVES.get("npo_kl")(beta=0.1)
    assert objective.needs_reference and not objective.retain_is_nll
    losses = objective.losses(model, batches, reference)
    plain = OBJECTIVES.get("npo")(beta=0.1).losses(model, batches, reference)
    torch.testing.assert_close(losses["forget"], plain["forget"])
    expected = kl_to_reference(tokens.logits_of(model, batches["retain"]), reference(batches["retain"]))
    torch.testing.assert_close(losses["retain"], expected)
    assert losses["retain"] > 0
    for name in ("simnpo_kl", "wga_kl"):
        kl = OBJECTIVES.get(name)().losses(model, batches, reference)
        nll = OBJECTIVES.get(name.removesuffix("_kl"))().losses(model, batches, reference)
        torch.testing.assert_close(kl["forget"], nll["forget"])
        torch.testing.assert_close(kl["retain"], expected)


@pytest.mark.parametrize("objective,rectifier", [("undial", "gru"), ("satimp", "pcgrad"), ("ceu", "sago"),
                                                 ("npo_kl", "gru"), ("simnpo_kl", "none"), ("wga_kl", "pcgrad"),
                                                 ("satimp", "none")])
def test_objectives_run_through_the_loop(tmp_path, objective, rectifier):
    import json

    model = tiny_llama()
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    config = TrainConfig(objective=objective, rectifier=rectifier, lr=1e-3, max_steps=2, batch_size=4)
    result = train(model, make_streams(), config, tmp_path, pad_token_id=0, progress=False)
    assert result.status == "ok" and result.optimizer_steps == 2
    rows = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert all(r["update_norm"] > 0 for r in rows)
    assert any(not torch.equal(p, start[name]) for name, p in model.named_parameters())


@pytest.mark.parametrize("objective,lr,measure", [("undial", 1e-3, "own"), ("ceu", 1e-2, "own"),
                                                  ("satimp", 1e-2, "nll")])
def test_objective_moves_the_number_it_targets(tmp_path, objective, lr, measure):
    """UNDIAL and CE-U lower their own forget term (a distillation target built from the start model);
    SatImp is a weighted ascent whose loss is not monotone (its weight p^β1 shrinks as p falls), so
    its number is the forget NLL, which must rise."""
    import copy

    from methods import tokens
    from methods.data import collate

    streams, model = make_streams(), tiny_llama()
    start = copy.deepcopy(model).eval()
    fixed = {name: collate(streams[name], 0) for name in ("forget", "retain")}
    measured = OBJECTIVES.get(objective)()

    def number():
        with torch.no_grad():
            if measure == "nll":
                return -tokens.mean_nll(tokens.logits_of(model, fixed["forget"]), fixed["forget"]["labels"]).item()
            return measured.losses(model, fixed, lambda b: tokens.logits_of(start, b))["forget"].item()

    before = number()
    config = TrainConfig(objective=objective, lr=lr, max_steps=3, batch_size=4)
    assert train(model, streams, config, tmp_path, pad_token_id=0, progress=False).status == "ok"
    assert number() < before


def test_bad_retain_loss_is_explained():
    with pytest.raises(ValueError, match="retain_loss must be one of"):
        OBJECTIVES.get("satimp")(retain_loss="mse")
