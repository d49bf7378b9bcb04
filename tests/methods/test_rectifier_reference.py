"""Every rectifier equals a straightforward float64 implementation of its rule (methods.md §3) on
random buffers, whichever way the buffers are laid out (rows of one block, as the loop allocates
them, or separate tensors) and however the passes are chunked; the norms and dot products a rule
reports without reading the buffers again equal those measured on its update; and the loop's
logged geometry equals the direct values."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from methods.buffers import TaskBuffers
from methods.gradspace import GradSpace
from methods.registry import OBJECTIVES, RECTIFIERS
from methods.rectifiers.base import TaskGradients
from methods.rectifiers.sago import sago
from methods.train import combine, plan_tasks

SIZES = [7, 30, 1, 64, 12, 300]
SEGMENTS = [(sum(SIZES[:i]), n) for i, n in enumerate(SIZES)]
N = sum(SIZES)
EPS = 1e-10


# ---- straightforward references (float64, whole vectors, no Gram matrix, no chunks)
def ref_pcgrad(f, r, gamma, alpha, segments=None):
    out = torch.empty_like(f)
    for offset, numel in segments or [(0, len(f))]:
        fs, rs = f[offset:offset + numel], r[offset:offset + numel]
        d = fs @ rs
        projected = fs - d / (rs @ rs + EPS) * rs if d < 0 else fs
        out[offset:offset + numel] = gamma * projected + alpha * rs
    return out


def ref_pcgrad_sym(f, r, gamma, alpha):
    d = f @ r
    if d < 0:
        return gamma * (f - d / (r @ r) * r) + alpha * (r - d / (f @ f) * f)
    return gamma * f + alpha * r


def ref_blur(f, r, gamma, alpha):
    return gamma * f + alpha * (r - (r @ f) / (f @ f + EPS) * f)


def ref_sago(f, r, gamma, alpha, prefer_retain):
    conflict = torch.sign(f) * torch.sign(r) < 0
    kept = gamma * f + alpha * r if prefer_retain else gamma * f
    return torch.where(conflict, alpha * r, kept)


def ref_project(g_u, m, cos_clip):
    d = g_u @ m
    if d >= 0:
        return g_u
    if cos_clip is None:
        return g_u - d / (m @ m) * m
    cos = max(float(d / (g_u.norm() * m.norm())), cos_clip)
    return g_u - (g_u.norm() * cos / m.norm()) * m


def buffers_of(names, seed, layout):
    g = torch.Generator().manual_seed(seed)
    block = torch.randn(len(names), N, generator=g) * torch.exp(torch.randn(len(names), N, generator=g))
    if layout == "separate":
        return {name: block[i].clone() for i, name in enumerate(names)}
    return dict(zip(names, block.unbind(0)))


def tasks_of(buffers, weights, retain, alpha, constraint=None):
    return TaskGradients(buffers, weights, retain=retain, retain_weight=alpha, constraint=constraint)


def check_reported(combined, forget, retain):
    u = combined.update.double()
    assert combined.dot_update_forget == pytest.approx(float(u @ forget), rel=1e-5, abs=1e-6 * float(u.norm() * forget.norm()))
    if combined.update_sq_norm is not None:
        assert combined.update_sq_norm == pytest.approx(float(u @ u), rel=1e-5)
    if combined.dot_update_retain is not None:
        assert combined.dot_update_retain == pytest.approx(float(u @ retain), rel=1e-5, abs=1e-6 * float(u.norm() * retain.norm()))


LAYOUTS = [("block", None), ("block", 5), ("separate", 64)]


@pytest.mark.parametrize("layout,chunk", LAYOUTS)
@pytest.mark.parametrize("name,args", [("pcgrad", {}), ("pcgrad", {"granularity": "global"}), ("pcgrad-sym", {}),
                                       ("blur", {}), ("sago", {}), ("sago-prefer-retain", {})])
@pytest.mark.parametrize("gamma,alpha", [(1.0, 1.0), (0.7, 1.6)])
def test_two_task_rules_equal_the_reference(name, args, layout, chunk, gamma, alpha):
    space = GradSpace(SEGMENTS, chunk=chunk)
    for seed in range(6):
        buffers = buffers_of(["forget", "retain"], seed, layout)
        f, r = buffers["forget"].double(), buffers["retain"].double()
        if seed % 2:  # half the pairs conflict globally
            buffers["forget"].neg_()
            f = -f
        combined = RECTIFIERS.get(name)(**args).combine(tasks_of(buffers, {"forget": gamma, "retain": alpha},
                                                                 "retain", alpha), space)
        expected = {"pcgrad": lambda: ref_pcgrad(f, r, gamma, alpha, None if args else SEGMENTS),
                    "pcgrad-sym": lambda: ref_pcgrad_sym(f, r, gamma, alpha),
                    "blur": lambda: ref_blur(f, r, gamma, alpha),
                    "sago": lambda: ref_sago(f, r, gamma, alpha, False),
                    "sago-prefer-retain": lambda: ref_sago(f, r, gamma, alpha, True)}[name]()
        torch.testing.assert_close(combined.update.double(), expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))
        check_reported(combined, f, r)
        assert torch.equal(buffers["retain"].double(), r)  # the retain buffer is left intact


@pytest.mark.parametrize("layout,chunk", LAYOUTS)
@pytest.mark.parametrize("cos_clip", [None, -0.5])
def test_gru_equals_the_reference_over_steps(layout, chunk, cos_clip):
    rectifier = RECTIFIERS.get("gru")(gamma=0.6, cos_clip=cos_clip)
    space = GradSpace(SEGMENTS, chunk=chunk)
    m = torch.zeros(N, dtype=torch.float64)
    projected = 0
    for seed in range(8):
        buffers = buffers_of(["forget", "retain"], seed, layout)
        if seed % 2:  # against the retain gradient: the projection fires
            buffers["forget"].mul_(0.1).sub_(buffers["retain"], alpha=1.5)
        f, r = buffers["forget"].double(), buffers["retain"].double()
        combined = rectifier.combine(tasks_of(buffers, {"forget": 1.0, "retain": 0.5}, "retain", 0.5, "retain"), space)
        m = 0.6 * r + 0.4 * m
        expected = ref_project(f + 0.5 * r, m, cos_clip)
        torch.testing.assert_close(rectifier.ema.double(), m, rtol=1e-5, atol=1e-5 * float(m.abs().max()))
        torch.testing.assert_close(combined.update.double(), expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))
        check_reported(combined, f, r)
        u = combined.update.double()
        assert combined.extra["cos_update_constraint"] == pytest.approx(float(u @ m / (u.norm() * m.norm())), abs=1e-5)  # fp32 rounding of u
        projected += int(combined.intervened)
    assert projected > 0


@pytest.mark.parametrize("name", ["gru-ce", "gru-kl"])
def test_gru_after_projection_equals_the_reference(name):
    rectifier = RECTIFIERS.get(name)(gamma=0.8)
    space = GradSpace(SEGMENTS, chunk=11)
    m = torch.zeros(N, dtype=torch.float64)
    for seed in range(5):
        if name == "gru-ce":
            buffers = buffers_of(["forget", "retain_nll"], seed, "block")
            tasks = tasks_of(buffers, {"forget": 0.9}, "retain_nll", 1.3, "retain_nll")
            retain, constraint = "retain_nll", "retain_nll"
        else:
            buffers = buffers_of(["forget", "retain", "retain_nll"], seed, "block")
            tasks = tasks_of(buffers, {"forget": 0.9, "retain": 1.3}, "retain", 1.3, "retain_nll")
            retain, constraint = "retain", "retain_nll"
        f, g_r, g_c = (buffers[t].double() for t in ("forget", retain, constraint))
        combined = rectifier.combine(tasks, space)
        m = 0.8 * g_c + 0.2 * m
        expected = ref_project(0.9 * f, m, None) + 1.3 * g_r
        torch.testing.assert_close(combined.update.double(), expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))
        check_reported(combined, f, g_r)


def test_sum_with_separate_buffers_equals_the_weighted_sum():
    buffers = buffers_of(["forget", "retain", "gate"], 3, "block")
    expected = -1.0 * buffers["forget"].double() + 0.5 * buffers["retain"].double() + 2.0 * buffers["gate"].double()
    f, r = buffers["forget"].double(), buffers["retain"].double()
    combined = RECTIFIERS.get("none")().combine(
        tasks_of(buffers, {"forget": -1.0, "retain": 0.5, "gate": 2.0}, None, 1.0), GradSpace(SEGMENTS, chunk=13))
    torch.testing.assert_close(combined.update.double(), expected, rtol=1e-5, atol=1e-4)
    check_reported(combined, f, r)


def test_sago_chunked_equals_the_boolean_rule_with_zeros_and_tiny_values():
    """Zeros count as agreement; products of tiny values underflow to 0 but their signs still conflict."""
    g = torch.Generator().manual_seed(7)
    f, r = torch.randn(N, generator=g), torch.randn(N, generator=g)
    f[::5] = 0.0
    r[1::7] = 0.0
    f[2::9] = -0.0
    f[3::11], r[3::11] = 1e-30, -1e-30   # f·r = −1e-60 underflows to −0: still a conflict
    f[4::13], r[4::13] = -3e-38, 2e-39    # subnormal retain value
    assert ((f * r)[3::11] == 0).all()
    for gamma, alpha in [(1.0, 1.0), (0.5, 2.0)]:
        for prefer_retain in (False, True):
            expected = torch.where(torch.sign(f) * torch.sign(r) < 0, r * alpha,
                                   f * gamma + r * alpha if prefer_retain else f * gamma)
            for chunk in (None, 1, 17, 1000):
                got = sago(f.clone(), r, gamma, alpha, GradSpace(SEGMENTS, chunk=chunk), prefer_retain)
                if prefer_retain and alpha != 1.0:  # γ·g_f + α·g_r may be fused into one rounding
                    torch.testing.assert_close(got.update, expected, rtol=1e-6, atol=0.0)
                else:
                    assert torch.equal(got.update, expected)
                conflicts = int((torch.sign(f) * torch.sign(r) < 0).sum())
                assert got.intervened == pytest.approx(conflicts / N)
                assert (got.update[3::11] == r[3::11] * alpha).all()


def run_of(rectifier_name, args, objective="graddiff", seed=0, chunk=None):
    torch.manual_seed(seed)
    params = [(f"p{i}", nn.Parameter(torch.zeros(n))) for i, n in enumerate(SIZES)]
    rectifier = RECTIFIERS.get(rectifier_name)(**args)
    plan = plan_tasks(OBJECTIVES.get(objective)(), rectifier, [])
    buffers = TaskBuffers(params, plan.buffers, "cpu")
    g = torch.Generator().manual_seed(seed)
    buffers.block.copy_(torch.randn(buffers.block.shape, generator=g))
    config = SimpleNamespace(rectifier=rectifier_name)
    return SimpleNamespace(plan=plan, buffers=buffers, space=GradSpace(buffers.segments, chunk=chunk),
                           rectifier=rectifier, analyzers=[], layout={}, config=config)


def cos(a, b):
    return float(a @ b / (a.norm() * b.norm()))


@pytest.mark.parametrize("name,args", [("gru", {}), ("pcgrad", {}), ("pcgrad-global", {}), ("pcgrad-sym", {}),
                                       ("sago", {}), ("sago-prefer-retain", {}), ("blur", {})])
@pytest.mark.parametrize("objective", ["graddiff", "ga"])
def test_logged_geometry_equals_the_direct_values(name, args, objective):
    run = run_of(name, args, objective, chunk=23)
    plan = run.plan
    before = {t: run.buffers.buffers[t].double().clone() for t in plan.buffers}
    forget, retain = next(iter(plan.weights)), plan.retain
    row = {}
    update, update_norm, geometry = combine(run, 0, row)
    u = update.double()
    assert update_norm == pytest.approx(float(u.norm()), rel=1e-6)
    for task, norm in geometry["grad_norm"].items():
        assert norm == pytest.approx(float(before[task].norm()), rel=1e-6)
    assert geometry["cos_forget_retain"] == pytest.approx(cos(before[forget], before[retain]), abs=1e-6)
    assert geometry["cos_update_forget"] == pytest.approx(cos(u, before[forget]), abs=1e-6)
    assert geometry["cos_update_retain"] == pytest.approx(cos(u, before[retain]), abs=1e-6)
    assert geometry["intervened"] is not None
    if name == "gru":
        m = run.rectifier.ema.double()
        assert row["cos_update_constraint"] == pytest.approx(cos(u, m), abs=1e-6)
