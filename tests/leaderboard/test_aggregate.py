"""Aggregation and versioning over synthetic results."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from scipy import stats

from tests.leaderboard import lb_synthetic as syn
from leaderboard import aggregate, build, comparability, versioning


def _base(row_id):
    """Row id without its `<evaluator variant>/hp-<hash>` tail (these tests vary neither)."""
    return row_id.rsplit("/", 2)[0]


def _rows(site):
    rows = json.loads((site / "leaderboard.json").read_text())["rows"]
    by_base = {_base(row["row_id"]): row for row in rows}
    assert len(by_base) == len(rows)
    return by_base


def test_seeds_are_averaged_with_a_t_interval(tmp_path):
    for seed, fq in enumerate((0.2, 0.4, 0.9)):
        syn.write(tmp_path / "r", syn.document(seed=seed, metrics={"forget_quality": fq, "model_utility": 0.5}))
    syn.write(tmp_path / "r", syn.document(method="ga", metrics={"forget_quality": 0.3, "model_utility": 0.4}))
    build.build([tmp_path / "r"], tmp_path / "site")
    rows = _rows(tmp_path / "site")
    npo = rows["tofu-tiny/forget10/tiny-llama/npo+none"]
    mean = 0.5
    half = stats.t.ppf(0.975, 2) * stats.tstd([0.2, 0.4, 0.9]) / math.sqrt(3)
    assert npo["n_seeds"] == 3 and npo["seeds"] == "0,1,2"
    assert npo["metric:forget_quality"] == pytest.approx(mean)
    assert npo["metric:forget_quality:ci_low"] == pytest.approx(mean - half)
    assert npo["metric:forget_quality:ci_high"] == pytest.approx(mean + half)
    assert npo["metric:model_utility:ci_low"] == pytest.approx(0.5)  # no spread, zero-width interval
    assert npo["cost:train_seconds"] == pytest.approx(11.0)
    single = rows["tofu-tiny/forget10/tiny-llama/ga+none"]
    assert single["metric:forget_quality"] == 0.3 and single["metric:forget_quality:ci_low"] is None
    # parquet and csv hold the same table
    frame = pd.read_parquet(tmp_path / "site" / "leaderboard.parquet")
    assert len(frame) == 2 and frame["comparable"].dtype == bool
    assert len(pd.read_csv(tmp_path / "site" / "leaderboard.csv")) == 2


def test_rows_that_cannot_be_compared_are_flagged_not_ranked(tmp_path):
    root = tmp_path / "r"
    syn.write(root, syn.document(method="npo", metrics={"forget_quality": 0.6, "model_utility": 0.5}))
    syn.write(root, syn.document(method="ga", metrics={"forget_quality": 0.9, "model_utility": 0.6}))
    syn.write(root, syn.document(method="graddiff", state="diverged", step=12,
                                 metrics={"forget_quality": 0.99, "model_utility": 0.99}))
    syn.write(root, syn.document(method="simnpo", variant="legacy-ds300",
                                 metrics={"forget_quality": 0.95, "model_utility": 0.95}))
    floor = 2 / math.comb(400, 200)  # complete separation at n = 200
    syn.write(root, syn.document(method="idkdpo", metrics={"forget_quality": floor, "model_utility": 0.9}))
    syn.write(root, syn.document(method="wga", flags={"fallback_reference": True},
                                 metrics={"forget_quality": 0.97, "model_utility": 0.97}))
    syn.write(root, syn.document(role="retain", method="retain", metrics={"forget_quality": 1.0, "model_utility": 0.6}))
    build.build([root], tmp_path / "site")
    rows = _rows(tmp_path / "site")
    base = "tofu-tiny/forget10/tiny-llama/"
    assert rows[base + "ga+none"]["comparable"] and rows[base + "ga+none"]["pareto_rank"] == 1
    assert rows[base + "npo+none"]["pareto_rank"] == 2  # dominated by ga on both axes
    assert "diverged (seed 0, step 12)" in rows[base + "graddiff+none"]["flags"]
    assert "evaluator_variant_legacy-ds300_not_main_ours" in rows[base + "simnpo+none"]["flags"]
    assert "fq_at_ks_floor" in rows[base + "idkdpo+none"]["flags"]
    assert "fallback_reference" in rows[base + "wga+none"]["flags"]
    for name in ("graddiff+none", "simnpo+none", "idkdpo+none", "wga+none"):
        assert rows[base + name]["comparable"] is False and rows[base + name]["pareto_rank"] is None
    retain = rows[base + "reference/retain"]
    assert retain["role"] == "retain" and retain["pareto_rank"] is None and retain["comparable"]


def test_ks_floor_detection():
    assert comparability.at_ks_floor(1.94e-119) and comparability.at_ks_floor(1.06e-239)
    assert comparability.at_ks_floor(2 / math.comb(80, 40)) and comparability.at_ks_floor(0.0)
    assert not comparability.at_ks_floor(1.83e-21) and not comparability.at_ks_floor(0.3)


def test_build_is_deterministic(tmp_path):
    syn.demo_grid(tmp_path / "a")
    syn.demo_grid(tmp_path / "b")
    first = build.build([tmp_path / "a"], tmp_path / "site-a")
    second = build.build([tmp_path / "b"], tmp_path / "site-b")
    assert first["content_hash"] == second["content_hash"] and first["version"] == "1.0.0"
    assert (tmp_path / "site-a" / "leaderboard.json").read_text() == (tmp_path / "site-b" / "leaderboard.json").read_text()
    again = build.build([tmp_path / "a"], tmp_path / "site-a")  # rebuild in place: nothing new
    assert again["version"] == "1.0.0" and again["bump"] == "none"


def test_changelog_between_two_builds(tmp_path):
    root = tmp_path / "r"
    syn.write(root, syn.document(method="npo", metrics={"forget_quality": 0.6, "model_utility": 0.5}))
    syn.write(root, syn.document(method="ga", metrics={"forget_quality": 0.9, "model_utility": 0.6}))
    v1 = build.build([root], tmp_path / "v1")
    # only an added row -> patch
    syn.write(root, syn.document(method="simnpo", metrics={"forget_quality": 0.7, "model_utility": 0.7}))
    v2 = build.build([root], tmp_path / "v2", previous=tmp_path / "v1")
    assert v2["version"] == "1.0.1" and v2["bump"] == "patch"
    assert [_base(r) for r in v2["changes"]["added"]] == ["tofu-tiny/forget10/tiny-llama/simnpo+none"]
    assert v2["changes"]["changed"] == {} and v2["changes"]["removed"] == []
    # a changed value and a removed row -> minor; the previous version file alone is enough
    syn.write(root, syn.document(method="npo", metrics={"forget_quality": 0.65, "model_utility": 0.5}))
    (root / "tofu-tiny/forget10/tiny-llama/ga+none/seed0/metrics.json").unlink()
    v3 = build.build([root], tmp_path / "v3", previous=tmp_path / "v2" / "version.json")
    assert v3["version"] == "1.1.0" and v3["bump"] == "minor"
    assert [_base(r) for r in v3["changes"]["removed"]] == ["tofu-tiny/forget10/tiny-llama/ga+none"]
    assert [_base(r) for r in v3["changes"]["changed"]] == ["tofu-tiny/forget10/tiny-llama/npo+none"]
    changelog = (tmp_path / "v3" / "CHANGELOG.md").read_text()
    assert changelog.index("## 1.1.0") < changelog.index("## 1.0.1")
    assert "removed `tofu-tiny/forget10/tiny-llama/ga+none/ours/hp-" in changelog
    # a different table schema -> major
    prior = json.loads((tmp_path / "v3" / "version.json").read_text())
    prior["schema_fingerprint"] = "sha256:" + "0" * 64
    prior["content_hash"] = "sha256:" + "1" * 64
    assert versioning.version_record([], [], prior)["version"] == "2.0.0"


def test_invalid_or_duplicate_results_stop_the_build(tmp_path):
    syn.write(tmp_path / "a", syn.document())
    syn.write(tmp_path / "b", syn.document())
    with pytest.raises(aggregate.AggregationError, match="identity: duplicate"):
        build.build([tmp_path / "a", tmp_path / "b"], tmp_path / "site")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a leaderboard build"):
        build.build([tmp_path / "a"], tmp_path / "junk")


def test_evaluator_details_with_paths_and_false_flags_build(tmp_path):
    """Shape written by `ubench evaluate`: extra evaluator fields, flags that are False."""
    doc = syn.document(flags={"fq_saturated": False, "privleak_reference_fallback": False})
    doc["evaluator"].update(retain_reference="../shared/results/reference/retain", batch_size=32)
    doc["metric_details"] = {"forget_quality": {"ks_statistic": 0.2, "n_unlearned": 40}}
    syn.write(tmp_path / "r", doc)
    fallback = syn.document(method="ga", flags={"privleak_reference_fallback": True})
    syn.write(tmp_path / "r", fallback)
    build.build([tmp_path / "r"], tmp_path / "site")
    rows = _rows(tmp_path / "site")
    assert rows["tofu-tiny/forget10/tiny-llama/npo+none"]["comparable"]
    assert rows["tofu-tiny/forget10/tiny-llama/ga+none"]["flags"] == "privleak_reference_fallback"
