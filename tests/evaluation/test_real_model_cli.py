"""`ubench evaluate` options a real model needs: --item-cap (recorded as item_cap), --benchmark required,
--data as the data root or the benchmark's folder for every benchmark, the chosen prompt format
printed, and a fast offline failure without --data."""
import json
import time

import pytest

from evaluation import benchmarks, evaluate, models
from evaluation.benchmarks.tofu.data import vocabulary_texts
from tests.evaluation import smollm_twin
from workflows.cli import main


@pytest.fixture(scope="module")
def twin(tmp_path_factory, tiny_folder):
    texts = vocabulary_texts(benchmarks.get("tofu-tiny").open(tiny_folder))
    return smollm_twin.build(tmp_path_factory.mktemp("twin") / "chatmodel", texts)


def test_benchmark_is_required(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model", "tiny-llama", "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    assert "--benchmark" in capsys.readouterr().err


def test_item_cap_caps_every_set_records_it_and_prints_the_format(twin, tiny_folder, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["evaluate", "--benchmark", "tofu-tiny", "--data", str(tiny_folder), "--split", "forget10",
                 "--model", str(twin), "--item-cap", "2", "--out", str(out), "--quiet"]) == 0
    assert "prompt format: chat-template (inferred from the model name and tokenizer)" in capsys.readouterr().err
    document = json.loads((out / "metrics.json").read_text())
    assert document["evaluator"]["item_cap"] == 2
    assert document["evaluator"]["prompt_template"]["name"] == "chat-template"
    import pandas as pd

    table = pd.read_parquet(out / "per_item.parquet")
    assert table.groupby("eval_set").size().max() == 2


@pytest.mark.parametrize("cap", ["0", "-3"])
def test_item_cap_must_be_positive(twin, tiny_folder, tmp_path, capsys, cap):
    assert main(["evaluate", "--benchmark", "tofu-tiny", "--data", str(tiny_folder), "--model", str(twin),
                 "--item-cap", cap, "--out", str(tmp_path / "o")]) == 1
    assert "--item-cap must be a positive number" in capsys.readouterr().err


def test_item_cap_combines_with_the_legacy_cap():
    from evaluation.benchmarks.item_cap import combined_cap

    assert combined_cap(300, 5) == 5 and combined_cap(300, None) == 300 and combined_cap(None, 7) == 7


def test_rwku_rows_are_capped_per_target_and_file(tmp_path):
    from evaluation.benchmarks.item_cap import CappedData

    folder = benchmarks.get("rwku-tiny").generate(tmp_path / "rwku")
    data = benchmarks.get("rwku-tiny").open(folder)
    capped = CappedData(data, 1)
    name = next(p.stem for p in sorted(data.target(1).folder.glob("*.json")) if len(data.rows(1, p.stem)) > 1)
    assert len(data.rows(1, name)) > 1 and len(capped.rows(1, name)) == 1
    assert capped.rows_for([1, 2], name) == [data.rows(1, name)[0], data.rows(2, name)[0]]
    assert capped.targets == data.targets


def test_data_is_the_root_or_the_benchmark_folder(tmp_path):
    root = tmp_path / "data"
    for sub in ("tofu", "muse/news", "rwku", "wmdp", "mmlu"):
        (root / sub).mkdir(parents=True)
    notes = []
    assert evaluate.data_folder(benchmarks.get("tofu"), str(root), notes.append) == root / "tofu"
    assert evaluate.data_folder(benchmarks.get("tofu"), str(root / "tofu")) == str(root / "tofu")
    assert evaluate.data_folder(benchmarks.get("muse"), str(root)) == root / "muse"
    assert evaluate.data_folder(benchmarks.get("rwku"), str(root)) == root / "rwku"
    # WMDP reads wmdp/ and mmlu/ side by side: its "folder" is the root, and its wmdp/ folder means the root
    assert evaluate.data_folder(benchmarks.get("wmdp"), str(root)) == str(root)
    assert evaluate.data_folder(benchmarks.get("wmdp"), str(root / "wmdp"), notes.append) == root
    assert notes == [f"data: {root / 'tofu'} (the tofu folder of {root})",
                     f"data: {root} (the wmdp folder of {root / 'wmdp'})"]


def test_no_data_and_no_hub_fails_at_once(monkeypatch):
    for name in models.OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"tofu: no --data and the Hugging Face Hub cannot be reached: pass "
                                         r"--data DIR \(the data root holding tofu/"):
        evaluate.data_folder(benchmarks.get("tofu"), None)
    assert time.perf_counter() - started < models.HUB_PROBE_SECONDS + 1
