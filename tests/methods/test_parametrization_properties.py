"""What evaluation and the pipeline read about a parametrization are class properties and one model
attribute, not its name (issue #22 D)."""
from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from methods.parametrizations.base import EDITS_PROMPT_POSITIONS
from methods.parametrizations.grun import GRUNEdits
from methods.registry import PARAMETRIZATIONS


def test_class_properties_of_every_parametrization():
    table = {name: (cls.fsdp_savable, cls.copies_reference, cls.reports_gates, cls.snapshots_need_base)
             for name, cls in PARAMETRIZATIONS.load_all().items()}
    assert table == {"full": (True, True, False, False), "subset": (True, True, False, False),
                     "lora": (False, False, False, True), "grun": (False, False, True, False)}


def test_grun_edits_mark_the_model_they_attach_to():
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2))
    assert not getattr(model, EDITS_PROMPT_POSITIONS, False)
    GRUNEdits(16, [0, 1], 2, "linear").attach(model)
    # the evaluation modules read the attribute by this literal name (one line each, no import)
    assert EDITS_PROMPT_POSITIONS == "edits_prompt_positions" and model.edits_prompt_positions is True
