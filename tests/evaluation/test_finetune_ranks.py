"""`ubench finetune` under a data-parallel launch: every rank trains, only the main process writes
the model folder (once, atomically), with the training log beside the weights."""
import json

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from evaluation import benchmarks, finetune, models
from evaluation.benchmarks.tofu import tiny as tofu_tiny
from tests.methods.test_distributed import _set_env, free_port


def _worker(rank, world, port, data, start, out):
    _set_env(rank, world, port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    summary = finetune.run("tofu-tiny", data, "full", start, out, preset="tofu-tiny", overrides={"epochs": 1},
                           progress=False)
    with open(f"{out}.rank{rank}.json", "w") as f:
        json.dump({"steps": summary["train_result"]["optimizer_steps"]}, f)
    dist.destroy_process_group()


def test_two_ranks_write_one_model_folder(tmp_path):
    data = str(tofu_tiny.write(tmp_path / "data"))
    bench = benchmarks.get("tofu-tiny")
    start = models.build_tiny_llama(bench.vocabulary_texts(bench.open(data)), tmp_path / "start", seed=0)
    out = tmp_path / "finetuned"
    mp.spawn(_worker, args=(2, free_port(), data, str(start), str(out)), nprocs=2, join=True)
    steps = {json.loads((tmp_path / f"finetuned.rank{r}.json").read_text())["steps"] for r in (0, 1)}
    assert len(steps) == 1 and steps.pop() > 0
    assert (out / "train_log.jsonl").is_file() and (out / models.MODEL_CARD).is_file()
    assert not list(tmp_path.glob(".finetuned*"))  # no scratch or temporary folder left behind
    model, _, _ = models.load_model(str(out))
    assert all(torch.isfinite(p).all() for p in model.parameters())
