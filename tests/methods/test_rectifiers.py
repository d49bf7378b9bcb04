"""Invariants of the gradient combiners on random gradients (methods.md §8)."""
import pytest
import torch

from methods.gradspace import GradSpace
from methods.rectifiers.blur import blur
from methods.rectifiers.gru import GRU, ema_update, gru_project
from methods.rectifiers.base import TaskGradients
from methods.rectifiers.pcgrad import pcgrad_global, pcgrad_tensor
from methods.rectifiers.pcgrad_sym import pcgrad_symmetric
from methods.rectifiers.sago import sago

SIZES = [7, 30, 1, 64, 12]
SPACE = GradSpace([(sum(SIZES[:i]), n) for i, n in enumerate(SIZES)])
N = sum(SIZES)


def pairs(count=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(count):
        scale = torch.exp(torch.randn(N, generator=g))  # log-normal magnitudes, Gaussian signs
        yield torch.randn(N, generator=g) * scale, torch.randn(N, generator=g) * scale


def tol(a, b):
    return 1e-6 * float(a.norm() * b.norm())


def conflicting_pair():
    f, r = torch.randn(N), torch.randn(N)
    if torch.dot(f, r) > 0:
        f = -f
    return f, r


@pytest.mark.parametrize("gamma,alpha", [(1.0, 1.0), (0.5, 2.0)])
def test_pcgrad_global_update_never_conflicts_with_retain(gamma, alpha):
    for f, r in pairs():
        combined = pcgrad_global(f.clone(), r, gamma, alpha, SPACE)
        assert torch.dot(combined.update, r) >= -tol(combined.update, r)
        # projected forget part itself is orthogonal-or-agreeing to g_r
        f_tilde = (combined.update - alpha * r) / gamma
        assert torch.dot(f_tilde, r) >= -tol(f_tilde, r)
        assert combined.dot_update_forget == pytest.approx(float(torch.dot(combined.update, f)), rel=1e-4, abs=1e-4)


def test_pcgrad_tensor_projects_each_tensor():
    for f, r in pairs():
        update = pcgrad_tensor(f.clone(), r, 1.0, 1.0, SPACE).update
        for u_s, r_s, f_s in zip(SPACE.views(update), SPACE.views(r), SPACE.views(f)):
            f_tilde = u_s - r_s  # recovering g̃_f by subtraction costs float precision: relative to the inputs
            assert torch.dot(f_tilde, r_s) >= -1e-5 * float(f_s.norm() * r_s.norm())
            if torch.dot(f_s, r_s) >= 0:
                torch.testing.assert_close(f_tilde, f_s)


@pytest.mark.parametrize("rule", [pcgrad_global, pcgrad_tensor])
def test_pcgrad_is_sum_without_conflict(rule):
    f = torch.rand(N)
    r = torch.rand(N)  # all positive: no conflict anywhere
    combined = rule(f.clone(), r, 0.5, 2.0, SPACE)
    torch.testing.assert_close(combined.update, 0.5 * f + 2.0 * r)
    assert combined.intervened == 0.0


def test_pcgrad_symmetric_matches_two_task_formula_and_is_symmetric():
    for f, r in pairs():
        d = torch.dot(f, r)
        if d < 0:
            f_p = f - d / r.dot(r) * r
            r_p = r - d / f.dot(f) * f
            assert torch.dot(f_p, r) >= -tol(f_p, r) and torch.dot(r_p, f) >= -tol(r_p, f)
        else:
            f_p, r_p = f, r
        expected = 0.7 * f_p + 1.3 * r_p
        torch.testing.assert_close(pcgrad_symmetric(f.clone(), r.clone(), 0.7, 1.3, SPACE).update, expected,
                                   rtol=1e-5, atol=1e-5)
        swapped = pcgrad_symmetric(r.clone(), f.clone(), 1.0, 1.0, SPACE).update
        torch.testing.assert_close(pcgrad_symmetric(f.clone(), r.clone(), 1.0, 1.0, SPACE).update, swapped,
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prefer_retain", [False, True])
def test_sago_coordinatewise_agreement_with_retain(prefer_retain):
    for f, r in pairs():
        f[::9] = 0.0  # zeros count as agreement
        update = sago(f.clone(), r, 1.0, 0.5, SPACE, prefer_retain).update
        assert (update * r >= 0).all()
        assert torch.dot(update, r) >= 0
        agree = torch.sign(f) * torch.sign(r) >= 0
        expected_agree = f + 0.5 * r if prefer_retain else f
        torch.testing.assert_close(update[agree], expected_agree[agree])
        torch.testing.assert_close(update[~agree], 0.5 * r[~agree])
        if not prefer_retain:
            assert (update[f == 0] == 0).all()


def test_blur_removes_forget_direction_from_retain_part():
    for f, r in pairs():
        update = blur(f.clone(), r, 0.8, 1.5, SPACE).update
        residual = update - 0.8 * f
        assert abs(float(torch.dot(residual, f))) <= 1e-5 * float(residual.norm() * f.norm()) + 1e-6


def test_gru_projection_properties():
    for u, m in pairs():
        projected, c = gru_project(u.clone(), m, SPACE)
        assert torch.dot(projected, m) >= -tol(projected, m)
        if torch.dot(u, m) >= 0:
            assert c == 0.0 and torch.equal(projected, u)
        # scale invariance in m
        torch.testing.assert_close(gru_project(u.clone(), 3.7 * m, SPACE)[0], projected, rtol=1e-5, atol=1e-5)


def test_cos_clip():
    for _ in range(50):
        u, m = conflicting_pair()
        cos = float(torch.dot(u, m) / (u.norm() * m.norm()))
        clipped, _ = gru_project(u.clone(), m, SPACE, cos_clip=-0.5)
        full, _ = gru_project(u.clone(), m, SPACE)
        if cos >= -0.5:
            torch.testing.assert_close(clipped, full)
        else:
            expected = float(u.norm() * m.norm()) * (cos + 0.5)
            assert float(torch.dot(clipped, m)) == pytest.approx(expected, rel=1e-4)


def test_gru_ema_recurrence_and_update_against_post_ema_reference():
    rectifier = GRU(gamma=0.8)
    g = torch.Generator().manual_seed(3)
    m = torch.zeros(N)
    for _ in range(5):
        f, r = torch.randn(N, generator=g), torch.randn(N, generator=g)
        tasks = TaskGradients({"forget": f.clone(), "retain": r.clone()}, {"forget": 1.0, "retain": 0.5},
                              retain="retain", constraint="retain")
        combined = rectifier.combine(tasks, SPACE)
        m = 0.8 * r + 0.2 * m
        torch.testing.assert_close(rectifier.ema, m)
        g_u = f + 0.5 * r
        d = torch.dot(g_u, m)
        expected = g_u - (d / m.dot(m)) * m if d < 0 else g_u
        torch.testing.assert_close(combined.update, expected, rtol=1e-5, atol=1e-5)
        assert torch.dot(combined.update, m) >= -tol(combined.update, m)
        assert combined.dot_update_forget == pytest.approx(float(torch.dot(combined.update, f)), rel=1e-4, abs=1e-4)


def test_ema_update_weights_current_gradient():
    m = torch.ones(3)
    ema_update(m, torch.full((3,), 3.0), 0.8)
    torch.testing.assert_close(m, torch.full((3,), 0.8 * 3 + 0.2 * 1))


def test_pcgrad_global_is_registered_under_its_own_name():
    from methods.registry import RECTIFIERS

    assert RECTIFIERS.get("pcgrad-global")().args["granularity"] == "global"
    with pytest.raises(ValueError, match="global by definition"):
        RECTIFIERS.get("pcgrad-global")(granularity="tensor")


# ---- pinned against hand-computed vectors: a wrong rule (zeroing instead of projecting, a dropped
# retain term, a swapped projection direction) gives other numbers. Two tensors: [0:2] and [2:4].
PIN_SPACE = GradSpace([(0, 2), (2, 2)])
PIN_F = torch.tensor([1.0, 0.0, 2.0, -1.0])   # g_f
PIN_R = torch.tensor([-1.0, 1.0, 1.0, 1.0])   # g_r: ⟨f,r⟩ = -1 on tensor 0, +1 on tensor 1, 0 globally
PIN_F2 = torch.tensor([1.0, 0.0, 0.0, -2.0])  # global conflict with PIN_R: ⟨f,r⟩ = -3, ‖r‖² = 4


def test_pcgrad_tensor_pinned():
    # tensor 0 conflicts: f̃ = [1,0] − (−1/2)[−1,1] = [0.5, 0.5]; tensor 1 agrees: kept [2,−1]
    # g = 1·f̃ + 2·r = [0.5−2, 0.5+2, 2+2, −1+2]
    update = pcgrad_tensor(PIN_F.clone(), PIN_R, 1.0, 2.0, PIN_SPACE).update
    torch.testing.assert_close(update, torch.tensor([-1.5, 2.5, 4.0, 1.0]))


def test_pcgrad_global_pinned():
    # f̃ = f − (−3/4)·r = [1−0.75, 0.75, 0.75, −2+0.75]; g = 0.5·f̃ + 1·r
    update = pcgrad_global(PIN_F2.clone(), PIN_R, 0.5, 1.0, SPACE4).update
    torch.testing.assert_close(update, torch.tensor([0.125 - 1, 0.375 + 1, 0.375 + 1, -0.625 + 1]))


def test_pcgrad_symmetric_pinned():
    # d = −3, ‖r‖² = 4, ‖f‖² = 5: f' = f + 0.75 r = [0.25, 0.75, 0.75, −1.25]; r' = r + 0.6 f = [−0.4, 1, 1, −0.2]
    update = pcgrad_symmetric(PIN_F2.clone(), PIN_R.clone(), 1.0, 1.0, SPACE4).update
    torch.testing.assert_close(update, torch.tensor([-0.15, 1.75, 1.75, -1.45]))


def test_blur_pinned():
    # ⟨r,f⟩ = −3, ‖f‖² = 5: r − (−3/5) f = [−0.4, 1, 1, −0.2]; g = 1·f + 2·that
    update = blur(PIN_F2.clone(), PIN_R, 1.0, 2.0, SPACE4).update
    torch.testing.assert_close(update, torch.tensor([0.2, 2.0, 2.0, -2.4]))


SPACE4 = GradSpace([(0, 4)])


def test_gru_guarantee_against_post_step_ema_over_many_steps():
    """⟨update, m_t⟩ ≥ 0 with m_t the EMA *after* this step's update, for every step, while the
    current retain gradient may still conflict (the test would fail against g_c)."""
    rectifier = GRU(gamma=0.3)
    g = torch.Generator().manual_seed(5)
    conflicts_with_current = projected = 0
    for _ in range(40):
        f, r = torch.randn(N, generator=g), torch.randn(N, generator=g)
        tasks = TaskGradients({"forget": f.clone(), "retain_nll": r.clone()}, {"forget": 1.0},
                              retain="retain_nll", constraint="retain_nll")
        combined = rectifier.combine(tasks, SPACE)
        assert torch.dot(combined.update, rectifier.ema) >= -tol(combined.update, rectifier.ema)
        assert combined.extra["cos_update_constraint"] >= -1e-6
        conflicts_with_current += int(torch.dot(combined.update, r) < 0)
        projected += int(combined.intervened)
    assert projected > 0 and conflicts_with_current > 0


def test_gru_ce_and_kl_add_the_retain_gradient_after_the_projection():
    from methods.rectifiers.gru_after import GRUPlusCE, GRUPlusKL

    f, c = torch.tensor([1.0, -2.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0, 0.0])
    # first step: m = 0.8 c; ⟨f, m⟩ < 0 → f − (⟨f,m⟩/‖m‖²) m = [1, 0, 0, 0]; then + α·g_c
    tasks = TaskGradients({"forget": f.clone(), "retain_nll": c.clone()}, {"forget": 1.0},
                          retain="retain_nll", retain_weight=1.0, constraint="retain_nll")
    torch.testing.assert_close(GRUPlusCE().combine(tasks, SPACE4).update, torch.tensor([1.0, 1.0, 0.0, 0.0]))
    kl = torch.tensor([0.0, 0.0, 3.0, 0.0])
    tasks = TaskGradients({"forget": f.clone(), "retain": kl.clone(), "retain_nll": c.clone()},
                          {"forget": 1.0, "retain": 0.5}, retain="retain", retain_weight=0.5, constraint="retain_nll")
    torch.testing.assert_close(GRUPlusKL().combine(tasks, SPACE4).update, torch.tensor([1.0, 0.0, 1.5, 0.0]))
    with pytest.raises(ValueError, match="KL to the reference"):
        GRUPlusKL().combine(TaskGradients({"forget": f.clone(), "retain_nll": c.clone()}, {"forget": 1.0},
                                          retain="retain_nll", constraint="retain_nll"), SPACE4)
