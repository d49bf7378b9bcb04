"""A model name that cannot be a result folder is refused before the evaluation runs, and an
evaluation whose metrics.json would fail the schema leaves no file behind (issue #28)."""
from __future__ import annotations

import json

import jsonschema
import pytest

from evaluation import benchmarks, evaluate, models
from evaluation.benchmarks.tofu import tiny as tofu_tiny
from evaluation.benchmarks.tofu.data import vocabulary_texts
from workflows import cli, commands

from tests.workflows.test_commands import SPEC


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("names")
    data = tofu_tiny.write(root / "data")
    model = models.build_tiny_llama(vocabulary_texts(benchmarks.get("tofu-tiny").open(data)), root / "model",
                                    hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                    num_attention_heads=2, num_key_value_heads=2)
    return data, model


def test_a_path_as_model_card_preset_is_refused_before_the_model_loads(tiny, tmp_path, capsys, monkeypatch):
    data, model = tiny
    card = model / models.MODEL_CARD
    original = card.read_text()
    try:
        card.write_text(json.dumps({**json.loads(original), "preset": "../../evil"}))
        monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
        out = tmp_path / "out"
        code = cli.main(["evaluate", "--benchmark", "tofu-tiny", "--data", str(data), "--model", str(model),
                         "--out", str(out), "--quiet"])
        assert code == cli.EXIT_ERROR
        err = capsys.readouterr().err
        assert "Traceback" not in err and f"{card}: model card `preset` '../../evil' is not a model name" in err
        assert not out.exists() or not list(out.iterdir())
    finally:
        card.write_text(original)


def test_a_hub_id_preset_becomes_a_safe_name(tiny):
    _, model = tiny
    card = model / models.MODEL_CARD
    original = card.read_text()
    try:
        card.write_text(json.dumps({**json.loads(original), "preset": "locuslab/tofu_ft_phi-1.5"}))
        assert evaluate.model_name_from_path(str(model)) == "locuslab-tofu_ft_phi-1.5"
    finally:
        card.write_text(original)


def test_an_unsafe_identity_model_is_refused_before_the_model_loads(tiny, tmp_path, monkeypatch):
    data, model = tiny
    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(ValueError, match=r"identity model '\.\./x' is not a safe name"):
        evaluate.run(evaluate.EvaluationSpec(
            str(model), "tofu-tiny", str(data), "forget10", None, tmp_path / "out", identity={"model": "../x"}))
    assert not (tmp_path / "out").exists()


def test_a_result_that_fails_the_schema_at_write_time_leaves_no_file(tmp_path):
    train_result = tmp_path / "train_result.json"
    train_result.write_text(json.dumps({"status": "diverged", "diverged_step": 1, "reason": "non-finite loss"}))
    out = tmp_path / "run"
    with pytest.raises(jsonschema.ValidationError):
        commands.evaluate_run({**SPEC, "objective": "../evil"}, str(tmp_path / "no-model"), train_result, None, out)
    assert not out.exists() or not list(out.iterdir())
