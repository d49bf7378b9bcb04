"""Train a small random Llama through the loop as launched (`accelerate launch --config_file
config/accelerate/fsdp.yaml --num_processes 1 benchmarks/fsdp_check.py` on a GPU: Accelerate's FSDP2
path; plain `python` on CPU: one process), for `none`, GRU and NPO (frozen reference sharded under
FSDP2), and GradDiff+PCGrad on bf16 master weights (`master_dtype: bfloat16`: FSDP2 keeps bf16 shards,
the optimizer fp32 moments), then gather the full state as `ubench unlearn` does. Under FSDP2 the
precision block records FSDP's bf16 all-gather policy (`fsdp_param_dtype`). Prints one JSON line per case and
writes benchmarks/results/fsdp_check.json (and $OUT when set)."""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.bench_memory import llama_config, make_streams  # noqa: E402
from common import atomic  # noqa: E402
from methods import checkpoint  # noqa: E402
from methods.train import TrainConfig, train  # noqa: E402

CASES = [("graddiff", "none", "float32"), ("graddiff", "gru", "float32"), ("npo", "pcgrad", "float32"),
         ("graddiff", "pcgrad", "bfloat16")]


def main() -> int:
    from accelerate import PartialState
    from transformers import LlamaForCausalLM

    tiny = "--tiny" in sys.argv
    dims = (128, 2, 256, 512, 4) if tiny else (1024, 8, 2816, 32000, 16)
    rows = []
    for objective, rectifier, master in CASES:
        torch.manual_seed(0)
        model = LlamaForCausalLM(llama_config(*dims)).to(torch.bfloat16)
        streams = make_streams(16, 64, dims[3])
        config = TrainConfig(objective=objective, rectifier=rectifier, lr=1e-5, max_steps=3, batch_size=2,
                             compute_dtype="bfloat16", master_dtype=master, gradient_checkpointing=True)
        with tempfile.TemporaryDirectory() as tmp:
            result = train(model, streams, config, tmp, pad_token_id=0, progress=False)
        state = checkpoint.full_model_state(model)
        rows.append({"objective": objective, "rectifier": rectifier, "master_dtype": master, "status": result.status,
                     "sharded": checkpoint.is_sharded(model), "peak_memory_bytes": result.peak_memory_bytes,
                     "precision": result.precision, "saved_tensors": len(state),
                     "step_seconds": result.train_seconds / max(result.optimizer_steps, 1)})
        print(json.dumps(rows[-1]), flush=True)
        assert result.status == "ok", rows[-1]
    if PartialState().is_main_process:
        for folder in [ROOT / "benchmarks" / "results"] + ([Path(os.environ["OUT"])] if os.environ.get("OUT") else []):
            folder.mkdir(parents=True, exist_ok=True)
            atomic.write_json(folder / f"fsdp_check{'-tiny' if tiny else ''}.json", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
