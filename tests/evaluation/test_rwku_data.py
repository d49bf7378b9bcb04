"""RWKU data: folder names, splits, unlearning corpora and bad input (real data where present)."""
import json
import shutil
from pathlib import Path

import pytest

from evaluation.benchmarks import get
from evaluation.benchmarks.rwku import batch_retain_targets, parse_split
from evaluation.benchmarks.rwku.data import RwkuData, RwkuDataError

REPO = Path(__file__).resolve().parents[2]
SHARED_RWKU = REPO.parent / "shared" / "data" / "rwku"


@pytest.fixture(scope="module")
def real() -> RwkuData:
    if not (SHARED_RWKU / "1_Stephen_King").is_dir():
        pytest.skip(f"real RWKU data not found at {SHARED_RWKU} (../shared/data is not part of the repo)")
    return RwkuData.from_folder(SHARED_RWKU)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return get("rwku-tiny").generate(tmp_path_factory.mktemp("rwku_tiny") / "data")


@pytest.mark.shared_data
def test_real_folder_names_with_commas_dots_and_nfc(real):
    assert len(real.targets) == 200
    assert real.target(10).name == "Prince_Harry,_Duke_of_Sussex"
    assert real.target(24).name == "Beyoncé"
    assert any("." in t.name for t in real.targets.values())
    assert real.rows(24, "forget_level1")[0]["subject"] == "Beyoncé"


@pytest.mark.shared_data
def test_real_totals_and_batch_corpora(real):
    assert sum(len(real.rows(t, "passage")) for t in real.targets) == 12_798
    assert sum(len(real.rows(t, "forget_level3")) for t in real.targets) == 6_984
    corpora = get("rwku").unlearning_corpora(real, "batch-1-50")
    assert len(corpora["forget"]) == sum(len(real.rows(t, "passage")) for t in range(1, 51))
    assert len(corpora["retain"]) == sum(len(real.rows(t, "passage")) for t in range(151, 201))
    assert corpora["forget"].kind == "text" and "151-200" in corpora["retain"].source
    single = get("rwku").unlearning_corpora(real, "target-7")
    assert len(single["forget"]) == len(real.rows(7, "positive")) and single["retain"] is None
    passage = get("rwku").unlearning_corpora(real, "target-7-passage")
    assert passage["forget"].items == real.texts([7], "passage")


@pytest.mark.shared_data
def test_real_missing_file_and_out_of_range_target(real):
    with pytest.raises(RwkuDataError, match=r"positive\.json is missing for target 11.*targets 1-10"):
        get("rwku").unlearning_corpora(real, "target-11")
    with pytest.raises(RwkuDataError, match="target id 201 is out of range"):
        get("rwku").unlearning_corpora(real, "target-201")


def test_split_names():
    assert parse_split("target-7") == {"kind": "positive", "targets": [7]}
    assert parse_split("target-7-passage")["kind"] == "passage"
    assert parse_split("batch-1-50")["targets"] == list(range(1, 51))
    assert batch_retain_targets(list(range(1, 51)), 200, "batch-1-50") == list(range(151, 201))
    for bad in ("target7", "batch-5-2", "forget10"):
        with pytest.raises(ValueError, match="RWKU split"):
            parse_split(bad)
    with pytest.raises(ValueError, match="overlap"):
        batch_retain_targets(list(range(1, 8)), 12, "batch-1-7")


def _copy(tiny: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(tiny, out)
    return out


def test_unknown_probe_type_names_file_and_row(tiny, tmp_path):
    root = _copy(tiny, tmp_path)
    path = next(root.glob("2_*")) / "forget_level3.json"
    rows = json.loads(path.read_text(encoding="utf-8"))
    rows[1]["type"] = "jailbreak"
    path.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(RwkuDataError, match=r"forget_level3\.json, row 1: unknown level-3 probe type 'jailbreak'"):
        get("rwku-tiny").open(root)


def test_missing_level_file_names_it(tiny, tmp_path):
    root = _copy(tiny, tmp_path)
    (next(root.glob("3_*")) / "neighbor_level2.json").unlink()
    with pytest.raises(RwkuDataError, match=r"neighbor_level2\.json is missing for target 3"):
        get("rwku-tiny").open(root)


def test_tiny_layout_and_names(tiny):
    data = get("rwku-tiny").open(tiny)
    assert sorted(data.targets) == list(range(1, 13))
    assert any("," in t.name or "." in t.name for t in data.targets.values())
    corpora = get("rwku-tiny").unlearning_corpora(data, "batch-1-4")
    assert len(corpora["forget"]) == 16 and "9-12" in corpora["retain"].source
    with pytest.raises(RwkuDataError, match="target id 13 is out of range"):
        get("rwku-tiny").unlearning_corpora(data, "target-13")
