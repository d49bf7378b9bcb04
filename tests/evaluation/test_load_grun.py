"""A saved GRUN run loads through the same `load_model` path as any other model, edits attached."""
import shutil

import torch

from evaluation import models
from evaluation.benchmarks.tofu.data import TofuData
from evaluation.benchmarks.tofu.data import vocabulary_texts
from methods.parametrizations.grun import GRUN


def test_load_model_attaches_saved_grun_edits(tiny_folder, tmp_path):
    torch.set_num_threads(1)
    base = models.build_tiny_llama(vocabulary_texts(TofuData(tiny_folder)), tmp_path / "base", seed=0)
    model, tokenizer, fmt = models.load_model(str(base))
    grun = GRUN(layers=[1], rank=2, gate="linear")
    model = grun.prepare(model, needs_reference=False)
    with torch.no_grad():  # open the gate so the edit visibly acts
        for name, p in model.grun.named_parameters():
            p.add_(torch.randn_like(p) * 0.5 + (2.0 if "bias" in name else 0.0))
    run = tmp_path / "run"
    grun.save(model, run)
    tokenizer.save_pretrained(str(run))
    shutil.copy(base / models.MODEL_CARD, run / models.MODEL_CARD)

    loaded, loaded_tokenizer, loaded_fmt = models.load_model(str(run))
    assert hasattr(loaded, "grun") and loaded_fmt == fmt
    ids = loaded_tokenizer(fmt.prompt("Who wrote it?", loaded_tokenizer), return_tensors="pt")["input_ids"]
    plain, _, _ = models.load_model(str(base))
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, model(input_ids=ids).logits)
        assert (loaded(input_ids=ids).logits - plain(input_ids=ids).logits).abs().max() > 0
