"""LoRA: merged and unmerged adapters give the same logits; only adapters train; the reference is
the base with adapters disabled."""
import pytest
import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from transformers import AutoModelForCausalLM

from methods.parametrizations.lora import LoRA
from methods.train import TrainConfig, train
from tests.methods.conftest import VOCAB, make_streams, tiny_llama


def trained_lora(tmp_path, **args):
    model = tiny_llama()
    config = TrainConfig(objective="npo", rectifier="gru", parametrization="lora", lr=5e-2, max_steps=3,
                         batch_size=4, seed=0, parametrization_args={"rank": 4, "alpha": 8.0, **args})
    result = train(model, make_streams(), config, tmp_path / "run", pad_token_id=0, progress=False)
    return model, result


def test_only_adapters_train_and_reference_is_the_untouched_base(tmp_path):
    base = tiny_llama()
    lora = LoRA(rank=4, alpha=8.0, target_modules=["q_proj", "v_proj"])
    model = lora.prepare(tiny_llama(), needs_reference=True)
    names = [n for n, _ in lora.trainable_parameters(model)]
    assert names and all("lora_" in n for n in names)
    d, r, layers = 32, 4, 2
    assert sum(p.numel() for _, p in lora.trainable_parameters(model)) == layers * 2 * (d * r + r * d)
    ids = torch.randint(1, VOCAB, (2, 6))
    with torch.no_grad():
        for _, p in lora.trainable_parameters(model):
            p.add_(0.5)  # adapters now change the output
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        torch.testing.assert_close(lora.reference_logits(model, batch), base(**batch).logits)
        assert (model(**batch).logits - base(**batch).logits).abs().max() > 1e-3


def test_merged_and_unmerged_adapters_give_the_same_logits(tmp_path):
    model, result = trained_lora(tmp_path)
    assert result.status == "ok"
    model.eval()
    ids = torch.randint(1, VOCAB, (3, 8))
    adapted = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
    assert adapted
    with torch.no_grad():
        unmerged = model(input_ids=ids).logits
        for module in adapted:
            module.merge()
        merged_in_place = model(input_ids=ids).logits
        for module in adapted:
            module.unmerge()
    torch.testing.assert_close(merged_in_place, unmerged, atol=1e-5, rtol=1e-5)
    (tmp_path / "merged").mkdir()
    LoRA(rank=4, alpha=8.0).save(model, tmp_path / "merged")  # a fresh instance, as workflows.commands does
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    assert not any("lora" in n for n, _ in reloaded.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, unmerged, atol=1e-5, rtol=1e-5)


def test_adapter_save_mode_writes_a_peft_folder(tmp_path):
    model, _ = trained_lora(tmp_path)
    (tmp_path / "adapter").mkdir()
    LoRA(save="adapter").save(model, tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()


def test_bad_lora_arguments_are_explained():
    with pytest.raises(ValueError, match="not modules"):
        LoRA(target_modules=["c_attn"]).prepare(tiny_llama(), needs_reference=False)
    with pytest.raises(ValueError, match="save must be"):
        LoRA(save="both")
