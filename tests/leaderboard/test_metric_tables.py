"""The metric meta-evaluation's tables on the board: validation, what the page data carries, the
low-faithfulness flag, versioning and publication (test_page.py drives the tab in chromium)."""
from __future__ import annotations

import json

import pytest

from leaderboard import build, metric_tables, publish, versioning
from tests.leaderboard import lb_metric_tables as mt
from tests.leaderboard import lb_synthetic as syn
from workflows.cli import main as ubench

PREFIX = "window.UBENCH_DATA = "


def _data(site) -> dict:
    text = (site / "assets" / "data.js").read_text(encoding="utf-8")
    return json.loads(text[len(PREFIX):].rstrip().rstrip(";"))


def _broken(mutate) -> dict:
    document = mt.table()
    mutate(document)
    return document


@pytest.fixture
def results(tmp_path):
    syn.demo_grid(tmp_path / "results")
    return tmp_path / "results"


def test_the_build_carries_the_tables_into_the_page_data(results, tmp_path):
    mt.write(results)
    record = build.build([results], tmp_path / "site")
    data = _data(tmp_path / "site")
    assert data["metric_tables"] == {"tofu-tiny": mt.table()}
    assert data["low_faithfulness"] == metric_tables.LOW_FAITHFULNESS == 0.7
    notes = data["metric_notes"]["tofu-tiny"]
    assert notes["forget_quality"] == {"faithfulness": 0.93, "ci_low": 0.83, "ci_high": 0.98,
                                       "headline": True, "low": False, "split": "forget10",
                                       "note": None}
    assert notes["forget_truth_ratio"]["low"] and not notes["privleak"]["low"]
    assert notes["model_utility"]["faithfulness"] is None and not notes["model_utility"]["low"]
    assert notes["mia_rm_loss"]["faithfulness"] is None and "own retain reference" in notes["mia_rm_loss"]["note"]
    saved = json.loads((tmp_path / "site" / metric_tables.BUILD_FILE).read_text())
    assert saved == {"tofu-tiny": mt.table()}
    assert record["metric_tables_hash"] == metric_tables.digest(saved)
    assert record["metric_tables_change"] == "added"
    assert "- metric meta-evaluation tables added" in (tmp_path / "site" / "CHANGELOG.md").read_text()


def test_no_tables_no_tab_data_and_the_same_hash_as_before(results, tmp_path):
    record = build.build([results], tmp_path / "site")
    data = _data(tmp_path / "site")
    assert data["metric_tables"] == {} and data["metric_notes"] == {}
    assert not (tmp_path / "site" / metric_tables.BUILD_FILE).exists()
    assert "metric_tables_hash" not in record and "metric_tables_change" not in record
    table = json.loads((tmp_path / "site" / "leaderboard.json").read_text())
    assert record["content_hash"] == versioning.content_hash(table["rows"], table["columns"])


def test_tables_alone_bump_the_patch_version_and_changing_them_again_too(results, tmp_path):
    site = tmp_path / "site"
    first = build.build([results], site)
    mt.write(results)
    second = build.build([results], site)
    assert (first["version"], second["version"], second["bump"]) == ("1.0.0", "1.0.1", "patch")
    assert second["changes"] == {"added": [], "changed": {}, "removed": []}
    assert build.build([results], site)["bump"] == "none"
    document = mt.table()
    document["metrics"][0]["faithfulness"]["value"] = 0.9
    mt.write(results, document)
    third = build.build([results], site)
    assert (third["version"], third["metric_tables_change"]) == ("1.0.2", "changed")
    assert "tables changed" in (site / "CHANGELOG.md").read_text()


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["metrics"][0]["faithfulness"].update(value=1.3), "metrics[0].faithfulness: an AUC lies in [0, 1]"),
    (lambda d: d["metrics"][1]["faithfulness"].update(ci_low=0.6, ci_high=0.5), "metrics[1].faithfulness: ci_low 0.6 is above ci_high 0.5"),
    (lambda d: d["metrics"][0]["Q"].update(value=1.5), "metrics[0].Q: Q is at most 1"),
    (lambda d: d["metrics"][0]["R"].update(ci_high=None), "metrics[0].R: ci_low and ci_high are both numbers or both null"),
    (lambda d: d["metrics"][0]["HM"].pop("value"), "metrics[0].HM.value: missing"),
    (lambda d: d["metrics"][0].pop("R"), "metrics[0].R: missing"),
    (lambda d: d["metrics"][4]["faithfulness"].update(ci_low=0.2), "metrics[4].faithfulness: value is null (not computable) but"),
    (lambda d: d["metrics"][4].update(note=3), "metrics[4].note: expected a string"),
    (lambda d: d["metrics"][2].update(direction="up"), "metrics[2].direction: expected one of higher, lower, zero, half"),
    (lambda d: d["metrics"][0].update(headline="yes"), "metrics[0].headline: expected true or false"),
    (lambda d: d["metrics"][0]["n"].update(Q=-1), "metrics[0].n.Q: expected a count"),
    (lambda d: d["metrics"][3].update(metric="forget_quality"), "metrics[3].metric: 'forget_quality' already appears at metrics[0]"),
    (lambda d: d.update(metrics=[]), "metrics: expected a non-empty list"),
    (lambda d: d["pools"].pop("N"), "pools.N: expected an object {models, description}"),
    (lambda d: d["pools"]["P"].update(models=0), "pools.P.models: expected a count ≥ 1"),
    (lambda d: d["bootstrap"].update(level=95), "bootstrap.level: expected a number in (0, 1)"),
    (lambda d: d["definitions"].pop("HM"), "definitions.HM: expected a non-empty string"),
    (lambda d: d.update(robustness_models="12"), "robustness_models: expected a count"),
    (lambda d: d["replication"]["checks"][0].update(holds="yes"), "replication.checks[0].holds: expected true, false or null"),
    (lambda d: d["replication"].pop("reference"), "replication.reference: expected a non-empty string"),
])
def test_a_bad_field_is_named_with_its_file(tmp_path, mutate, field):
    file = mt.write(tmp_path, _broken(mutate))
    with pytest.raises(metric_tables.MetricTableError) as caught:
        metric_tables.load([tmp_path])
    assert str(file) in str(caught.value) and field in str(caught.value)


def test_a_bad_table_stops_the_build_before_anything_is_written(results, tmp_path):
    mt.write(results, _broken(lambda d: d["metrics"][0]["faithfulness"].update(value=1.3)))
    with pytest.raises(metric_tables.MetricTableError, match="metrics\\[0\\].faithfulness"):
        build.build([results], tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_null_scores_and_no_replication_are_valid():
    document = mt.table(replication=None)
    document["metrics"][0]["R"] = document["metrics"][0]["HM"] = None
    document["metrics"][1]["faithfulness"].update(ci_low=None, ci_high=None)
    assert metric_tables.problems(document) == []
    del document["replication"]
    assert metric_tables.problems(document) == []


def test_nan_the_wrong_folder_and_two_tables_for_one_benchmark_are_refused(results, tmp_path):
    file = mt.write(results)
    file.write_text(file.read_text().replace('"value": 0.93', '"value": NaN'))
    with pytest.raises(metric_tables.MetricTableError, match="NaN is not a number JSON allows"):
        metric_tables.load([results])
    mt.write(results)
    mt.write(results, folder="muse-tiny")
    with pytest.raises(metric_tables.MetricTableError, match=r"(?s)muse-tiny/metric_table.json: invalid.*"
                                                             r"'tofu-tiny' does not match its folder 'muse-tiny'"):
        metric_tables.load([results])
    (results / metric_tables.FOLDER / "muse-tiny" / metric_tables.FILE).unlink()
    other = tmp_path / "more"
    mt.write(other)
    with pytest.raises(metric_tables.MetricTableError, match="a second metric table for 'tofu-tiny'"):
        metric_tables.load([results, other])


def test_the_cli_reports_a_bad_table_and_exits_2(results, tmp_path, capsys):
    mt.write(results, _broken(lambda d: d["metrics"][0].update(direction="up")))
    assert ubench(["leaderboard", "build", "--results", str(results), "--out", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err
    assert "leaderboard build:" in err and "metric_table.json" in err and "metrics[0].direction" in err


@pytest.mark.parametrize("value, low", [(0.69, True), (0.7, False), (0.93, False), (0.0, True), (None, False)])
def test_the_flag_is_below_the_threshold_only(value, low):
    assert metric_tables.is_low(value) is low


def test_a_utility_metric_is_never_flagged():
    assert not metric_tables.is_low(0.5, utility=True)
    assert metric_tables.utility_axis("tofu-tiny") == {"model_utility"}
    document = mt.table()
    document["metrics"][3]["faithfulness"] = mt.score(0.5, 0.4, 0.6)  # model_utility, TOFU's utility axis
    notes = metric_tables.column_notes({"tofu-tiny": document})["tofu-tiny"]
    assert notes["model_utility"]["faithfulness"] == 0.5 and not notes["model_utility"]["low"]
    everything = metric_tables.column_notes({"tofu-tiny": document}, utility_of=lambda benchmark: set())
    assert everything["tofu-tiny"]["model_utility"]["low"]


def test_the_flag_follows_the_threshold_it_is_given():
    tables = {"tofu-tiny": mt.table()}
    assert {m for m, n in metric_tables.column_notes(tables)["tofu-tiny"].items() if n["low"]} == {"forget_truth_ratio"}
    strict = metric_tables.column_notes(tables, threshold=0.85)["tofu-tiny"]
    assert {m for m, n in strict.items() if n["low"]} == {"forget_truth_ratio", "privleak"}


def test_digest_is_none_without_tables_and_follows_the_content():
    assert metric_tables.digest({}) is None
    one, two = mt.table(), mt.table()
    two["metrics"][0]["faithfulness"]["value"] = 0.5
    assert metric_tables.digest({"a": one}) != metric_tables.digest({"a": two})
    assert metric_tables.digest({"a": one}).startswith("sha256:")


def test_publishing_ships_the_tables_in_data_and_names_them_in_the_card(results, tmp_path):
    mt.write(results)
    build.build([results], tmp_path / "site")
    folder = tmp_path / "dry"
    publish.publish(tmp_path / "site", "someone/unlearn-bench", target=f"local:{folder}")
    assert json.loads((folder / "data" / metric_tables.BUILD_FILE).read_text()) == {"tofu-tiny": mt.table()}
    assert f"data/{metric_tables.BUILD_FILE}" in (folder / "README.md").read_text()
    assert "tofu-tiny" in (folder / "space" / "assets" / "data.js").read_text()


def test_publishing_a_build_without_tables_ships_none(results, tmp_path):
    build.build([results], tmp_path / "site")
    folder = tmp_path / "dry"
    publish.publish(tmp_path / "site", "someone/unlearn-bench", target=f"local:{folder}")
    assert not (folder / "data" / metric_tables.BUILD_FILE).exists()
    assert metric_tables.BUILD_FILE not in (folder / "README.md").read_text()


def test_the_page_has_the_metrics_view_and_reads_the_tables(results, tmp_path):
    build.build([results], tmp_path / "site")
    html = (tmp_path / "site" / "index.html").read_text()
    assert 'id="metrics-view"' in html and 'id="metric-tables"' in html and 'id="metric-threshold"' in html
    app = (tmp_path / "site" / "assets" / "app.js").read_text()
    assert "DATA.metric_tables" in app and "DATA.metric_notes" in app and '"tab-metrics"' in app
