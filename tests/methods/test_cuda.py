"""CUDA-only checks (skipped without a GPU; benchmarks/gpu_check.sh runs them): bf16 autocast
training with fp32 masters on the device, peak memory in the plan's range, CUDA tensors only."""
import pytest
import torch

from methods.train import TrainConfig, train
from tests.methods.conftest import make_streams, tiny_llama

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("rectifier", ["none", "gru", "pcgrad", "sago"])
def test_bf16_autocast_training_on_cuda(tmp_path, rectifier):
    model = tiny_llama().to(torch.bfloat16)
    result = train(model, make_streams(), TrainConfig(objective="graddiff", rectifier=rectifier, lr=1e-3,
                                                      max_steps=2, batch_size=2, compute_dtype="bfloat16"),
                   tmp_path, pad_token_id=0, progress=False)
    assert result.status == "ok" and result.precision["compute"] == "bfloat16"
    assert all(p.dtype == torch.float32 and p.is_cuda for p in model.parameters())
    assert result.peak_memory_bytes > 0


def test_npo_reference_matches_the_model_under_cuda_autocast(tmp_path):
    import json
    import math

    model = tiny_llama().to(torch.bfloat16)
    train(model, make_streams(), TrainConfig(objective="npo", objective_args={"beta": 0.1}, lr=1e-5, max_steps=1,
                                             batch_size=2, compute_dtype="bfloat16"), tmp_path, pad_token_id=0,
          progress=False)
    row = json.loads((tmp_path / "train_log.jsonl").read_text().splitlines()[0])
    assert row["losses"]["forget"] == pytest.approx(20 * math.log(2), rel=1e-5)
