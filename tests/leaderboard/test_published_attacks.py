"""Published numbers after an attack (published.yaml `attacks`): the strict check, the attack
columns they get (leaderboard/published_attacks.py) and where they reach the built board."""
from __future__ import annotations

import json

import pytest
import yaml

from leaderboard import attacks, build, published, published_attacks
from tests.leaderboard import lb_synthetic as syn
from tests.leaderboard import test_page as page_test
from tests.leaderboard.test_page import browser, site  # noqa: F401  (fixtures)

PREFIX = "window.UBENCH_DATA = "
SOURCE = {"id": "paper", "title": "A paper", "cite": "arXiv 0000.00000", "url": "https://example.org",
          "second_hand": False, "protocol": "4-bit RTN"}


def _row(**changes):
    row = {"source": "paper", "benchmark": "muse", "split": "news", "model": "m", "label": "GA_GDR",
           "role": "unlearned", "method": "graddiff", "rectifier": "none",
           "metrics": {"knowmem_forget": 0.289, "privleak": 87.1},
           "attacks": {"quantize-int4": {"knowmem_forget": 0.501, "privleak": -99.1}}}
    row.update(changes)
    return row


def _write(tmp_path, rows):
    path = tmp_path / "published.yaml"
    path.write_text(yaml.safe_dump({"sources": [SOURCE], "rows": rows}), encoding="utf-8")
    return path


def _data(site) -> dict:
    text = (site / "assets" / "data.js").read_text(encoding="utf-8")
    assert text.startswith(PREFIX)
    return json.loads(text[len(PREFIX):].rstrip().rstrip(";"))


def test_the_yaml_loads_and_zhang_s_attacked_numbers_are_ours_to_compare():
    rows = [r for r in published.load() if r["source"] == "zhang-quant"]
    assert {(r["split"], r["label"]) for r in rows} == {
        (split, label) for split in ("news", "books")
        for label in ("Target", "Retrain", "GA", "GA_GDR", "GA_KLR", "NPO", "NPO_GDR")}
    labels = set(published.attack_labels())
    for row in rows:
        assert row["attacks"] and set(row["attacks"]) <= labels & {"quantize-int4", "quantize-int8"}
        for measured in row["attacks"].values():
            assert set(measured) == set(row["metrics"])  # all four MUSE metrics, before and after
    assert all(r["attacks"] == {} for r in published.load() if r["source"] != "zhang-quant")


def test_published_attack_rows_reach_the_built_board_with_the_recovery_by_hand(tmp_path):
    syn.demo_grid(tmp_path / "results")
    build.build([tmp_path / "results"], tmp_path / "site")
    rows = _data(tmp_path / "site")["published"]
    zhang = {(r["split"], r["label"]): r for r in rows if r["source"] == "zhang-quant"}
    ga_gdr = zhang[("news", "GA_GDR")]
    # Zhang et al. NEWS, KnowMem on D_f: GA_GDR 28.9 -> 50.1 at 4 bit, 26.9 at 8 bit; the target 63.9
    assert ga_gdr["attack:quantize-int4:recovery"] == pytest.approx((0.501 - 0.289) / (0.639 - 0.289))
    assert ga_gdr["attack:quantize-int4:recovery"] == pytest.approx(0.6057, abs=1e-4)
    assert ga_gdr["attack:quantize-int8:recovery"] == pytest.approx((0.269 - 0.289) / (0.639 - 0.289))
    assert ga_gdr["attack:quantize-int4:knowmem_forget"] == 0.501
    assert ga_gdr["attack:quantize-int4:privleak"] == -99.1
    assert ga_gdr["knowledge_metric"] == "knowmem_forget"
    assert (ga_gdr["worst_case_knowledge"], ga_gdr["worst_case_attack"]) == (0.501, "quantize-int4")
    assert ga_gdr["undone_by"] == "quantize-int4"
    target = zhang[("news", "Target")]
    assert target["attack:quantize-int4:recovery"] is None  # the target has no forgetting to undo
    assert target["attack:quantize-int8:knowmem_forget"] == 0.664
    assert zhang[("books", "NPO")]["undone_by"] is None  # 0.0 -> 5.3 of 59.4: recovery 0.089
    assert not any(k.startswith("attack:") for r in rows if r["source"] == "ou-repro" for k in r)


def test_recovery_needs_the_same_source_s_target():
    rows = [_row(), _row(source="other", label="Finetuned", role="target", method="target",
                         metrics={"knowmem_forget": 0.639}, attacks={})]
    alone = published_attacks.with_attack_columns(rows)[0]
    assert alone["attack:quantize-int4:recovery"] is None and alone["undone_by"] is None
    assert alone["worst_case_attack"] == "quantize-int4"  # the values stand without a target
    own = published_attacks.with_attack_columns(rows + [dict(rows[1], source="paper")])[0]
    assert own["attack:quantize-int4:recovery"] == pytest.approx(attacks.recovery(0.501, 0.289, 0.639))


def test_two_targets_for_one_attacked_row_are_refused():
    target = _row(label="Target", role="target", method="target", metrics={"knowmem_forget": 0.6}, attacks={})
    with pytest.raises(ValueError, match="'GA_GDR'.*2 target rows"):
        published_attacks.with_attack_columns([_row(), target, dict(target, label="Target again")])


@pytest.mark.parametrize("attacks_value, message", [
    ({"quantize-int3": {"knowmem_forget": 0.5}}, r"'quantize-int3' is not an attack of ours; use one of .*quantize-int4"),
    ({"quantize": {"knowmem_forget": 0.5}}, r"'quantize' is not an attack of ours"),
    ({"quantize-int4": {"verbmem_forget": 0.5}}, r"attacks\.quantize-int4\.verbmem_forget: the row reports no 'verbmem_forget'"),
    ({"quantize-int4": {"knowmem_forget": "50.1"}}, r"attacks\.quantize-int4\.knowmem_forget must be a finite number"),
    ({"quantize-int4": {"knowmem_forget": True}}, r"must be a finite number, got True"),
    ({"quantize-int4": {"knowmem_forget": float("nan")}}, r"must be a finite number, got nan"),
    ({"quantize-int4": {}}, r"attacks\.quantize-int4 must map metric names to numbers"),
    ({"quantize-int4": 0.5}, r"attacks\.quantize-int4 must map metric names to numbers"),
    ([{"quantize-int4": {"knowmem_forget": 0.5}}], r"\.attacks must map attack labels"),
    ({}, r"\.attacks must map attack labels .*omit the key"),
])
def test_a_malformed_attack_entry_is_refused_naming_the_row(tmp_path, attacks_value, message):
    good = _row(label="GA")
    path = _write(tmp_path, [good, _row(attacks=attacks_value)])
    with pytest.raises(ValueError, match=message) as error:
        published.load(path)
    assert "rows[1] (paper muse/news m 'GA_GDR')" in str(error.value)


def test_a_row_without_attacks_loads_as_before(tmp_path):
    row = _row()
    del row["attacks"]
    (loaded,) = published.load(_write(tmp_path, [row]))
    assert loaded["attacks"] == {}
    assert published_attacks.with_attack_columns([loaded]) == [loaded]


@pytest.mark.browser
@pytest.mark.skipif(page_test.CHROMIUM is None, reason="no chromium found (apt-get install -y chromium)")
def test_the_page_shows_published_attack_columns_on_the_muse_tab(browser, site):
    context, page_, requests, errors = page_test._open(browser, site)
    try:
        page_.locator("#tabs button", has_text="muse").click()
        headers = page_.locator("#published thead th").all_inner_texts()
        assert {"knowmem_forget after quantize-int4", "Recovery quantize-int4", "Recovery quantize-int8",
                "Worst-case knowledge", "Worst-case attack", "Forgetting undone by"} <= set(headers)
        row = page_.locator("#published tbody tr", has_text="GA_GDR").filter(has_text="news").first
        assert row.locator("td[data-key='attack:quantize-int4:recovery']").inner_text() == "0.6057"
        assert row.locator("td[data-key='undone_by']").inner_text() == "quantize-int4"
        ou = page_.locator("#published tbody tr", has_text="GradAscent").first  # no attacks: empty cells
        assert ou.locator("td[data-key='attack:quantize-int4:recovery']").inner_text() == ""
        assert errors == []
    finally:
        context.close()
    assert all(url.startswith("file://") for url in requests)
