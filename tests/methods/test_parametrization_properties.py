"""What evaluation and the pipeline read about a parametrization are class properties and one model
attribute, not its name (issue #22 D)."""
from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from methods.parametrizations.base import EDITS_NEED_ATTENTION_MASK, EDITS_PROMPT_POSITIONS
from methods.parametrizations.grun import GRUNEdits
from methods.registry import PARAMETRIZATIONS


def test_class_properties_of_every_parametrization():
    table = {name: (cls.fsdp_savable, cls.copies_reference, cls.reports_gates, cls.snapshots_need_base,
                    cls.trains_every_weight)
             for name, cls in PARAMETRIZATIONS.load_all().items()}
    assert table == {"full": (True, True, False, False, True), "subset": (True, True, False, False, False),
                     "lora": (False, False, False, True, False), "grun": (False, False, True, False, False)}


def test_the_snapshot_disk_plan_reads_trains_every_weight_from_source_as_the_class_says():
    """The plan runs at config load without torch; what it reads from source must be what the class says."""
    from methods.parametrizations.base import Parametrization
    from workflows.snapshot_disk import trains_every_weight

    assert Parametrization.trains_every_weight is False  # the default `trains_every_weight` passes
    for name, cls in PARAMETRIZATIONS.load_all().items():
        assert trains_every_weight(name) is cls.trains_every_weight, name
    assert PARAMETRIZATIONS.class_constant("lora", "no_such_attribute", "fallback") == "fallback"


def test_grun_edits_mark_the_model_they_attach_to():
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2))
    assert not getattr(model, EDITS_PROMPT_POSITIONS, False)
    GRUNEdits(16, [0, 1], 2, "linear").attach(model)
    # the evaluation modules read the attribute by this literal name (one line each, no import)
    assert EDITS_PROMPT_POSITIONS == "edits_prompt_positions" and model.edits_prompt_positions is True


def test_grun_edits_say_while_they_need_the_attention_mask():
    """Without a learned prompt suffix GRUN finds the prompt end from the attention mask: lm-eval's
    unmasked, right-padded batches must then score one row at a time (wmdp scoring reads the
    attribute, not the parametrization); a learned or restored suffix lifts that."""
    from evaluation.benchmarks.wmdp.scoring import effective_batch_size
    from methods import snapshots

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2))
    assert effective_batch_size(model, 8) == 8
    edits = GRUNEdits(16, [0, 1], 2, "linear")
    edits.attach(model)
    model.grun = edits
    assert EDITS_NEED_ATTENTION_MASK == "edits_need_attention_mask" and model.edits_need_attention_mask is True
    assert effective_batch_size(model, 8) == 1
    edits.prompt_suffix = [3, 4]
    assert model.edits_need_attention_mask is False and effective_batch_size(model, 8) == 8
    assert snapshots.extras_of(model) == {"grun_prompt_suffix": [3, 4]}
    snapshots.apply(model, {}, {"grun_prompt_suffix": []})  # a snapshot taken before the suffix was learned
    assert edits.prompt_suffix is None and effective_batch_size(model, 8) == 1
