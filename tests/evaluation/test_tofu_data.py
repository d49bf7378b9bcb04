import json

import pytest

from evaluation.benchmarks.tofu import data as tofu, tiny as tofu_tiny
from evaluation.benchmarks.tofu.data import OFFICIAL_COUNTS, TofuData, TofuDataError


@pytest.mark.shared_data
def test_every_official_split_loads_with_documented_counts(shared_tofu):
    data = tofu.official(shared_tofu)
    for split, count in OFFICIAL_COUNTS.items():
        assert len(data[split]) == count, split
    data.validate()
    for percent in ("01", "05", "10"):
        retain, forget = data[f"retain{100 - int(percent)}"], data[f"forget{percent}"]
        assert retain + forget == data["full"]
    assert len(tofu.load_idontknow(shared_tofu)) == 100


def test_three_json_layouts_give_the_same_rows(tmp_path):
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(5)]
    layouts = {
        "array": json.dumps(rows),
        "lines": "\n".join(json.dumps(r) for r in rows),
        "arrays_per_line": json.dumps(rows[:3]) + "\n" + json.dumps(rows[3:]),
    }
    for name, text in layouts.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "full.json").write_text(text)
        assert tofu.load_split("full", folder) == rows, name


def test_missing_and_malformed_files_name_file_and_schema(tmp_path):
    with pytest.raises(TofuDataError, match=r"forget10\.json not found.*question, answer.*locuslab/TOFU"):
        tofu.load_split("forget10", tmp_path)
    (tmp_path / "full.json").write_text('[{"question": "q"}]')
    with pytest.raises(TofuDataError, match=r"full\.json: row 0 lacks \['answer'\]"):
        tofu.load_split("full", tmp_path)
    (tmp_path / "holdout01.json").write_text("{not json")
    with pytest.raises(TofuDataError, match=r"holdout01\.json: line 1 is not JSON"):
        tofu.load_split("holdout01", tmp_path)
    with pytest.raises(ValueError, match="unknown TOFU split"):
        tofu.load_split("forget20", tmp_path)


def test_tofu_tiny_is_deterministic_and_valid(tiny_folder, tmp_path):
    data = TofuData(tiny_folder, tofu_tiny.expected_counts(tiny_folder))
    data.validate()
    assert len(data["full"]) == 500 and len(data["forget10"]) == 50 and len(data["forget01"]) == 5
    again = tofu_tiny.write(tmp_path / "again")
    for split in tofu.SPLITS:
        assert (again / f"{split}.json").read_bytes() == (tiny_folder / f"{split}.json").read_bytes()
    assert tofu_tiny.generate(seed=1)["full"] != tofu_tiny.generate(seed=0)["full"]
    for row in data["forget10_perturbed"]:
        assert row["paraphrased_answer"] not in row["perturbed_answer"]
        assert len(set(row["perturbed_answer"])) == 5


def test_validate_catches_broken_relations(tiny_folder, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_folder, broken)
    rows = json.loads((broken / "forget10.json").read_text())
    rows[0]["answer"] = "something else"
    (broken / "forget10.json").write_text(json.dumps(rows))
    with pytest.raises(TofuDataError, match="forget10 is not the last 50 rows of full"):
        TofuData(broken).validate()


def test_benchmark_registry_opens_and_validates(tiny_folder):
    from evaluation import benchmarks

    data = benchmarks.get("tofu-tiny").open(tiny_folder)
    assert len(data["forget05"]) == 25
    with pytest.raises(ValueError, match="unknown benchmark 'nope'.*tofu-tiny"):
        benchmarks.get("nope")
    with pytest.raises(ValueError, match="no Hub copy"):
        benchmarks.get("tofu-tiny").open(None)


@pytest.mark.shared_data
def test_registry_opens_real_tofu(shared_tofu):
    from evaluation import benchmarks

    assert len(benchmarks.get("tofu").open(shared_tofu)["forget10"]) == 400
