"""What the benchmarks own since issue #22: fine-tuning presets, the default preset per model, the
older generator config key, the capabilities attacks ask for, their own `ubench` commands."""
from __future__ import annotations

import argparse
from types import SimpleNamespace

import pytest

from evaluation import benchmarks, finetune_presets
from workflows.layout import Layout


@pytest.mark.parametrize("name", benchmarks.names())
def test_a_tiny_preset_is_one_the_benchmarks_declare(name):
    bench = benchmarks.get(name)
    if bench.tiny_finetune_preset is not None:
        assert bench.tiny_finetune_preset in bench.finetune_presets
        assert finetune_presets.default_preset("tiny-llama", name) == bench.tiny_finetune_preset
    else:
        with pytest.raises(ValueError, match="no fine-tuning preset for tiny-llama"):
            finetune_presets.default_preset("tiny-llama", name)


def test_every_preset_is_reachable_by_name_and_the_old_table_still_reads():
    declared = {n for bench in benchmarks.BENCHMARKS.values() for n in bench.finetune_presets}
    assert set(finetune_presets.presets()) == declared
    assert finetune_presets.FINETUNE_PRESETS == finetune_presets.presets()
    with pytest.raises(ValueError, match="unknown fine-tuning preset"):
        finetune_presets.get_preset("nope")


@pytest.mark.parametrize("name", benchmarks.names())
@pytest.mark.parametrize("model, expected", [("microsoft/phi-1_5", "tofu-phi"), ("NousResearch/Llama-2-7b-chat-hf", "tofu")])
def test_real_models_keep_the_published_qa_recipe_on_every_benchmark(name, model, expected):
    assert finetune_presets.default_preset(model, name) == expected


def test_the_older_generator_key_is_read_under_generators():
    layout = Layout.__new__(Layout)
    generated = [b for b in benchmarks.BENCHMARKS.values() if b.generator_config_key]
    assert generated and all(b.generated for b in generated)
    for bench in generated:
        key = bench.generator_config_key
        layout.grid = SimpleNamespace(config={key: {"seed": 1, "authors": 200}})
        assert layout.generator_options(bench.name) == {"seed": 1, "authors": 200}
        layout.grid = SimpleNamespace(config={key: {"seed": 1, "authors": 200}, "generators": {bench.name: {"seed": 2}}})
        assert layout.generator_options(bench.name) == {"seed": 2, "authors": 200}
    layout.grid = SimpleNamespace(config={"generators": {"x": {"seed": 2}}})
    assert layout.generator_options("not-registered") == {}


def test_benchmark_commands_register_once_per_family():
    from evaluation import cli

    parser = argparse.ArgumentParser(prog="ubench")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["tofu", "import-log", "log.json"])
    assert args.log == "log.json" and callable(args.func)
    with pytest.raises(SystemExit):
        parser.parse_args(["tofu-tiny", "--out", "x"])  # `ubench data generate --benchmark tofu-tiny` does it


def test_every_benchmark_data_error_is_a_benchmark_data_error():
    from evaluation.benchmarks.data_files import BenchmarkDataError
    from evaluation.benchmarks.muse.data import MuseDataError
    from evaluation.benchmarks.rwku.data import RwkuDataError
    from evaluation.benchmarks.tofu.data import TofuDataError
    from evaluation.benchmarks.wmdp.data import WmdpDataError

    for error in (MuseDataError, RwkuDataError, TofuDataError, WmdpDataError):
        assert issubclass(error, BenchmarkDataError) and issubclass(error, ValueError)
