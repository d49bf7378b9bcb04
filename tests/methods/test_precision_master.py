"""`master_dtype: bfloat16` (GRU's and SAGO-WMDP's regime: bf16 weights, fp32 AdamW moments): a
1e-5 step leaves most bf16 weights unchanged where fp32 masters move all of them; the optimizer is
torch's AdamW rule, rounded to the weight's dtype; the regime is recorded and validated."""
import pytest
import torch

from methods import precision
from methods.train import TrainConfig, train
from tests.methods.conftest import make_streams, tiny_llama

WEIGHT = "model.layers.0.mlp.up_proj.weight"


def _trained(tmp_path, master_dtype):
    model = tiny_llama().to(torch.bfloat16)
    start = dict(model.named_parameters())[WEIGHT].detach().float().clone()
    result = train(model, make_streams(), TrainConfig(
        objective="graddiff", lr=1e-5, max_steps=2, batch_size=2, seed=3, max_grad_norm=None,
        scheduler="constant", compute_dtype="bfloat16", master_dtype=master_dtype),
        tmp_path / master_dtype, pad_token_id=0, progress=False)
    return model, result, dict(model.named_parameters())[WEIGHT].detach().float() - start


def test_bf16_masters_round_small_steps_away_and_fp32_masters_keep_them(tmp_path):
    model, result, moved = _trained(tmp_path, "bfloat16")
    assert result.status == "ok"
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert result.precision["master_weights"] == ["bfloat16"] and result.precision["optimizer_states"] == "float32"
    assert "fp32 moments" in result.precision["optimizer"]
    unchanged_bf16 = (moved == 0).float().mean()
    _, fp32_result, moved_fp32 = _trained(tmp_path, "float32")
    assert fp32_result.precision["master_weights"] == ["float32"] and "optimizer" not in fp32_result.precision
    assert unchanged_bf16 > 0.5                      # most 1e-5 updates are below bf16's spacing
    assert (moved_fp32 == 0).float().mean() < 0.1    # fp32 masters keep them


def test_fp32_moment_adamw_is_torch_adamw_rounded_to_the_weight_dtype():
    torch.manual_seed(0)
    weights = [torch.randn(64, 32), torch.randn(32)]
    grads = [[torch.randn_like(w) for w in weights] for _ in range(3)]
    ours = [torch.nn.Parameter(w.clone()) for w in weights]
    reference = [torch.nn.Parameter(w.clone()) for w in weights]
    settings = dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    opt, ref = precision.AdamWFp32States(ours, **settings), torch.optim.AdamW(reference, **settings)
    for step in grads:
        for p, q, g in zip(ours, reference, step):
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        ref.step()
    for p, q in zip(ours, reference):  # fp32 parameters: the same rule
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    bf16 = torch.nn.Parameter(weights[0].to(torch.bfloat16))
    opt = precision.AdamWFp32States([bf16], **settings)
    bf16.grad = grads[0][0].to(torch.bfloat16)
    opt.step()
    assert bf16.dtype == torch.bfloat16 and opt.state[bf16]["exp_avg"].dtype == torch.float32
    expected = weights[0].to(torch.bfloat16).float()
    q = torch.nn.Parameter(expected.clone())
    reference = torch.optim.AdamW([q], **settings)
    q.grad = grads[0][0].to(torch.bfloat16).float()
    reference.step()
    assert torch.equal(bf16.float(), q.detach().to(torch.bfloat16).float())


def test_fp32_moments_survive_a_checkpoint_round_trip():
    weight = torch.nn.Parameter(torch.randn(16, 8).to(torch.bfloat16))
    opt = precision.AdamWFp32States([weight], lr=1e-3)
    weight.grad = torch.randn(16, 8).to(torch.bfloat16) * 1e-3
    opt.step()
    saved = opt.state_dict()
    resumed = precision.AdamWFp32States([weight], lr=1e-3)
    resumed.load_state_dict(saved)
    for key in ("exp_avg", "exp_avg_sq"):
        assert resumed.state[weight][key].dtype == torch.float32
        assert torch.equal(resumed.state[weight][key], opt.state[weight][key])  # not rounded through bf16


def test_bf16_masters_need_bf16_compute_and_known_names():
    with pytest.raises(ValueError, match="master_dtype bfloat16 needs compute_dtype bfloat16"):
        TrainConfig(objective="ga", master_dtype="bfloat16").validate()
    with pytest.raises(ValueError, match="master_dtype must be one of"):
        TrainConfig(objective="ga", master_dtype="float16", compute_dtype="bfloat16").validate()


def test_fsdp_policy_casts_parameters_to_the_compute_dtype_and_reduces_in_fp32():
    policy = precision.fsdp_policy("bfloat16")
    assert policy.param_dtype == torch.bfloat16 and policy.reduce_dtype == torch.float32
    assert precision.fsdp_policy("float32").param_dtype is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bf16_masters_train_on_cuda(tmp_path):
    model = tiny_llama().to(torch.bfloat16)
    result = train(model, make_streams(), TrainConfig(objective="graddiff", rectifier="pcgrad", lr=1e-3, max_steps=2,
                                                      batch_size=2, compute_dtype="bfloat16",
                                                      master_dtype="bfloat16"), tmp_path, pad_token_id=0,
                   progress=False)
    assert result.status == "ok" and result.precision["master_weights"] == ["bfloat16"]
    assert all(p.dtype == torch.bfloat16 and p.is_cuda for p in model.parameters())
