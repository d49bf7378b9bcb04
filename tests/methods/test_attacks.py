"""Attack plug-ins: quantization equals the library's quantize→dequantize, relearn halves, prompt prefix."""
from __future__ import annotations

import pytest
import torch

from methods.attacks import prompt, quantize, relearn
from methods.registry import ATTACKS


class TwoLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.proj = torch.nn.Linear(256, 64, bias=False)
        self.down = torch.nn.Linear(128, 32, bias=True)
        self.lm_head = torch.nn.Linear(32, 10, bias=False)


def awq_scales(groups: torch.Tensor, bits: int):
    """Zhang et al.'s RTN (AWQ pseudo_quantize_tensor) scales and zero points, written out."""
    largest = 2 ** bits - 1
    low, high = groups.amin(1), groups.amax(1)
    scale = (high - low).clamp(min=1e-5) / largest
    zero = (-torch.round(low / scale)).clamp(0, largest)
    return scale, zero


def test_int8_equals_torch_quantize_per_channel_dequantize():
    model, before = TwoLayers(), TwoLayers()
    record = ATTACKS.get("quantize")("int8").apply(model, None)
    for name in ("proj", "down"):
        weight = getattr(before, name).weight.detach()
        groups = weight.reshape(-1, 128)
        scale, zero = awq_scales(groups, 8)
        quantized = torch.quantize_per_channel(groups, scale.double(), zero.long(), 0, torch.quint8)
        expected = quantized.dequantize().reshape(weight.shape)
        assert torch.allclose(getattr(model, name).weight, expected, atol=1e-6), name
    assert torch.equal(model.lm_head.weight, before.lm_head.weight)  # the head stays in full precision
    assert record["library"].startswith("torch.ao") and record["library_version"] == torch.__version__
    assert (record["bits"], record["group_size"], record["quantized_layers"]) == (8, 128, 2)


def test_int4_rounds_to_16_levels_per_group_of_128():
    model, before = TwoLayers(), TwoLayers()
    ATTACKS.get("quantize")("int4").apply(model, None)
    weight = before.proj.weight.detach()
    groups = weight.reshape(-1, 128)
    scale, zero = awq_scales(groups, 4)
    expected = ((torch.clamp(torch.round(groups / scale[:, None]) + zero[:, None], 0, 15) - zero[:, None])
                * scale[:, None]).reshape(weight.shape)
    attacked = model.proj.weight.detach()
    assert torch.allclose(attacked, expected, atol=1e-6)
    assert max(len(torch.unique(g)) for g in attacked.reshape(-1, 128)) <= 16
    assert not torch.allclose(attacked, weight)


def test_nf4_equals_bitsandbytes_quantize_dequantize():
    bnb = pytest.importorskip("bitsandbytes.functional")
    import bitsandbytes

    model, before = TwoLayers(), TwoLayers()
    record = ATTACKS.get("quantize")("nf4").apply(model, None)
    for name in ("proj", "down"):
        weight = getattr(before, name).weight.detach()
        packed, state = bnb.quantize_4bit(weight, blocksize=64, quant_type="nf4")
        assert torch.equal(getattr(model, name).weight, bnb.dequantize_4bit(packed, state).reshape(weight.shape))
    assert record == {**record, "library": "bitsandbytes", "library_version": bitsandbytes.__version__,
                      "bits": 4, "block_size": 64, "quant_type": "nf4"}


def test_rtn_refuses_a_width_the_group_does_not_divide():
    with pytest.raises(ValueError, match="not a multiple of the group size 128"):
        quantize.rtn_dequantized(torch.zeros(4, 100), 4, 128)


def test_a_model_without_linear_layers_is_refused_by_name():
    with pytest.raises(ValueError, match="Embedding has no torch.nn.Linear"):
        ATTACKS.get("quantize")("int8").apply(torch.nn.Embedding(4, 4), None)


def test_unknown_variant_and_argument_name_the_allowed_ones():
    with pytest.raises(ValueError, match="variants: int4, int8, nf4"):
        ATTACKS.get("quantize")("int3")
    with pytest.raises(ValueError, match="accepted:"):
        ATTACKS.get("relearn")("forget-all", learning_rate=1.0)


def test_forget_split_halves_are_disjoint_fixed_and_cover_every_question():
    questions = [f"q{i}" for i in range(41)]
    trained, held_out = relearn.split_halves(questions, 0)
    assert not trained & held_out and trained | held_out == set(questions)
    assert (len(trained), len(held_out)) == (20, 21)
    assert relearn.split_halves(list(reversed(questions)), 0) == (trained, held_out)  # order-free
    assert relearn.split_halves(questions, 1) != (trained, held_out)


def test_relearn_defaults_are_ou_recipe():
    attack = ATTACKS.get("relearn")("forget-all")
    assert (attack.args["lr"], attack.args["epochs"], attack.args["batch_size"] * attack.args["grad_accum"]) == (
        2e-5, 1, 32)


def test_prefix_attack_ends_every_prompt_with_the_prefix():
    from evaluation.prompts import PHI

    fmt = ATTACKS.get("prompt")("prefix").prompt_format(PHI)
    assert fmt.prompt("Who?") == "Question: Who?\nAnswer: Sure, here is the answer: "
    assert fmt.prompt("Who?", with_answer_tag=False) == "Question: Who?\nSure, here is the answer: "
    assert fmt.name == "phi+prefix" and prompt.JAILBREAK_PREFIX == "Sure, here is the answer:"


def test_rtn_group_size_is_an_argument_recorded_and_applied():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(192, 8))
    weight = model[0].weight.detach().clone()
    record = ATTACKS.get("quantize")("int4", group_size=64).apply(model, None)
    assert record["group_size"] == 64
    assert torch.equal(model[0].weight, quantize.rtn_dequantized(weight, 4, 64))
    with pytest.raises(ValueError, match="group_size must be an integer >= 2"):
        ATTACKS.get("quantize")("int8", group_size=0)
    with pytest.raises(ValueError, match="does not take argument"):
        ATTACKS.get("quantize")("nf4", group_size=64)


def test_unsupported_architectures_are_named_without_torch_work():
    int4 = ATTACKS.get("quantize")("int4")
    assert "Conv1D" in int4.unsupported_reason("gpt2", {"hidden_size": 768})
    assert int4.unsupported_reason("llama", {"hidden_size": 4096, "intermediate_size": 11008}) is None
    assert "group_size: 64" in int4.unsupported_reason("llama", {"hidden_size": 576, "intermediate_size": 1536})
    assert ATTACKS.get("quantize")("nf4").unsupported_reason("llama", {"hidden_size": 576}) is None
