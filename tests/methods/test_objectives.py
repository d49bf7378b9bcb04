"""Each objective's loss equals its formula (methods.md §2) on a tiny hand-computed case."""
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from methods.registry import OBJECTIVES

B, T, V = 2, 5, 6
LABELS = torch.tensor([[-100, -100, 3, 1, 4], [-100, 2, 5, 0, -100]])  # second row: one padding label


class FixedLogits(nn.Module):
    """A 'model' whose logits are a parameter: losses and gradients can be checked by hand."""

    def __init__(self, seed):
        super().__init__()
        self.logits = nn.Parameter(torch.randn(B, T, V, generator=torch.Generator().manual_seed(seed)))

    def forward(self, input_ids, attention_mask):
        return SimpleNamespace(logits=self.logits)


def batch():
    return {"input_ids": torch.zeros(B, T, dtype=torch.long), "attention_mask": torch.ones(B, T, dtype=torch.long),
            "labels": LABELS}


BATCHES = {"forget": batch(), "retain": batch(), "forget_idk": batch(), "train": batch()}
REFERENCE_LOGITS = torch.randn(B, T, V, generator=torch.Generator().manual_seed(99))


def reference(_batch):
    return REFERENCE_LOGITS


def per_token_ce(logits):
    """Plain loops: CE_t for every labelled next-token prediction, as a list per sequence."""
    rows = []
    for b in range(B):
        row = []
        for t in range(T - 1):
            y = int(LABELS[b, t + 1])
            if y != -100:
                row.append(-float(torch.log_softmax(logits[b, t].double(), -1)[y]))
        rows.append(row)
    return rows


def losses(name, model, **args):
    objective = OBJECTIVES.get(name)(**args)
    return objective, objective.losses(model, BATCHES, reference if objective.needs_reference else None)


def hf_mean(rows):
    flat = [c for row in rows for c in row]
    return sum(flat) / len(flat)


def test_finetune_ga_graddiff_idknll_are_token_means():
    model = FixedLogits(0)
    ce = per_token_ce(model.logits.detach())
    mean = hf_mean(ce)
    assert losses("finetune", model)[1]["train"].item() == pytest.approx(mean, rel=1e-6)
    assert losses("ga", model)[1]["forget"].item() == pytest.approx(-mean, rel=1e-6)
    objective, out = losses("graddiff", model)
    assert objective.weights() == {"forget": 1.0, "retain": 1.0}
    assert out["forget"].item() == pytest.approx(-mean, rel=1e-6)
    assert out["retain"].item() == pytest.approx(mean, rel=1e-6)
    out = losses("idknll", model)[1]
    assert out["forget"].item() == pytest.approx(mean, rel=1e-6)


def test_graddiff_kl_is_reference_to_model_over_all_positions():
    model = FixedLogits(1)
    objective, out = losses("graddiff", model, retain_loss="kl")
    assert objective.needs_reference
    log_p = torch.log_softmax(model.logits.detach().double(), -1)
    log_r = torch.log_softmax(REFERENCE_LOGITS.double(), -1)
    expected = (log_r.exp() * (log_r - log_p)).sum(-1).mean()  # KL(ref‖θ), mean over all B·T positions
    assert out["retain"].item() == pytest.approx(float(expected), rel=1e-5)


def test_npo_loss_and_gradient_is_weighted_gradient_ascent():
    beta = 0.1
    model = FixedLogits(2)
    objective, out = losses("npo", model, beta=beta)
    nll = torch.tensor([sum(r) for r in per_token_ce(model.logits.detach())], dtype=torch.float64)
    ref_nll = torch.tensor([sum(r) for r in per_token_ce(REFERENCE_LOGITS)], dtype=torch.float64)
    expected = -(2 / beta) * torch.nn.functional.logsigmoid(beta * (nll - ref_nll)).mean()
    assert out["forget"].item() == pytest.approx(float(expected), rel=1e-5)
    assert out["retain"].item() == pytest.approx(hf_mean(per_token_ce(model.logits.detach())), rel=1e-6)
    # ∇L_f = mean_b −w_b·∇NLL_b with w = 2π_θ^β/(π_θ^β + π_ref^β), π = exp(−NLL)
    grad_loss, = torch.autograd.grad(out["forget"], model.logits)
    pi, pi_ref = torch.exp(-nll), torch.exp(-ref_nll)
    w = 2 * pi ** beta / (pi ** beta + pi_ref ** beta)
    expected_grad = torch.zeros_like(model.logits)
    for b in range(B):
        logits = model.logits
        g_b, = torch.autograd.grad(
            torch.stack([-torch.log_softmax(logits[b, t], -1)[int(LABELS[b, t + 1])]
                         for t in range(T - 1) if int(LABELS[b, t + 1]) != -100]).sum(), logits)
        expected_grad -= float(w[b]) / B * g_b
    torch.testing.assert_close(grad_loss, expected_grad, rtol=1e-4, atol=1e-6)


def test_simnpo_uses_length_normalised_nll():
    beta, delta = 4.5, 0.3
    model = FixedLogits(3)
    objective, out = losses("simnpo", model, delta=delta)
    assert objective.weights() == {"forget": 0.125, "retain": 1.0}
    rows = per_token_ce(model.logits.detach())
    avg = torch.tensor([sum(r) / len(r) for r in rows], dtype=torch.float64)
    expected = -(2 / beta) * torch.nn.functional.logsigmoid(beta * (avg - delta)).mean()
    assert out["forget"].item() == pytest.approx(float(expected), rel=1e-5)


def test_wga_weights_tokens_by_probability_power():
    model = FixedLogits(4)
    out = losses("wga", model, beta=2.0)[1]
    flat = [c for row in per_token_ce(model.logits.detach()) for c in row]
    expected = -sum(math.exp(-c) ** 2.0 * c for c in flat) / len(flat)
    assert out["forget"].item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name,extra", [("tnpo", 0.0), ("wtnpo", 1.5)])
def test_token_npo_weights(name, extra):
    beta = 4.0
    model = FixedLogits(5)
    objective, out = losses(name, model)
    assert objective.streams == ("forget",) and set(out) == {"forget"}
    ce = [c for row in per_token_ce(model.logits.detach()) for c in row]
    ref = [c for row in per_token_ce(REFERENCE_LOGITS) for c in row]
    terms = []
    for c, cr in zip(ce, ref):
        p, pr = math.exp(-c), math.exp(-cr)
        terms.append(2 * p ** (beta + extra) / (p ** beta + pr ** beta + 1e-5) * c)
    assert out["forget"].item() == pytest.approx(-sum(terms) / len(terms), rel=1e-5)
    with_kl = losses(name, model, retain_loss="kl")[1]
    assert set(with_kl) == {"forget", "retain"}


def test_token_helpers_match_hf_loss():
    from tests.methods.conftest import make_streams, tiny_llama
    from methods import tokens
    from methods.data import collate
    model = tiny_llama()
    batch = collate(make_streams()["forget"][:5], pad_token_id=0)
    hf = model(**batch).loss
    ours = tokens.mean_nll(tokens.logits_of(model, batch), batch["labels"])
    torch.testing.assert_close(ours, hf)


def test_unknown_objective_argument_lists_accepted_ones():
    with pytest.raises(ValueError, match="accepted: .*beta"):
        OBJECTIVES.get("npo")(betta=0.1)
    with pytest.raises(ValueError, match="retain_loss must be one of"):
        OBJECTIVES.get("graddiff")(retain_loss="mse")
