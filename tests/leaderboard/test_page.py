"""The offline web page in a real headless chromium: loads from file://, sorts, filters, plots, no network."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.leaderboard import lb_metric_tables as mt
from tests.leaderboard import lb_synthetic as syn
from tests.leaderboard import lb_table3 as t3
from leaderboard import build, page, publish

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium found (apt-get install -y chromium)"),
]


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="python playwright not installed")
    with sync_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb")
    syn.demo_grid(root / "results")
    build.build([root / "results"], root / "site")
    return root / "site"


def _open(browser, folder: Path):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page_ = context.new_page()
    requests, errors = [], []
    context.route("**/*", lambda route: (requests.append(route.request.url),
                                         route.continue_() if route.request.url.startswith("file://")
                                         else route.abort()))
    page_.on("pageerror", lambda e: errors.append(str(e)))
    page_.goto((folder / "index.html").as_uri())
    page_.wait_for_selector("#results tbody tr")
    return context, page_, requests, errors


def _column(page_, label_start: str) -> list[str]:
    headers = page_.locator("#results thead th").all_inner_texts()
    index = next(i for i, h in enumerate(headers) if h.startswith(label_start))
    return page_.locator(f"#results tbody tr td:nth-child({index + 1})").all_inner_texts()


def test_page_loads_sorts_filters_plots_offline(browser, site, tmp_path):
    context, page_, requests, errors = _open(browser, site)
    try:
        assert errors == []
        rows = page_.locator("#results tbody tr")
        assert rows.count() == 18  # 16 methods + target + retain
        assert page_.locator("#results tbody tr.role-target .badge.ref").inner_text() == "target"
        assert page_.locator("#results tbody tr.role-retain .badge.ref").inner_text() == "retain"

        page_.locator("#results thead th", has_text="forget_quality").click()
        values = [float(v.split(" [")[0]) for v in _column(page_, "forget_quality")]
        assert values == sorted(values)
        page_.locator("#results thead th", has_text="forget_quality").click()
        values = [float(v.split(" [")[0]) for v in _column(page_, "forget_quality")]
        assert values == sorted(values, reverse=True)

        page_.select_option("#filter-rectifier", "gru")
        assert rows.count() == 4 and set(_column(page_, "Rectifier")) == {"gru"}
        page_.select_option("#filter-rectifier", "")
        page_.fill("#filter-text", "simnpo")  # the search box filters after a short pause in typing
        expect(rows).to_have_count(4)
        assert set(_column(page_, "Objective")) == {"simnpo"}
        page_.fill("#filter-text", "")
        expect(rows).to_have_count(18)

        plot = page_.locator("svg.pareto")
        assert plot.count() == 1
        assert plot.locator("circle.point").count() == 16
        assert plot.locator("rect.point.ref").count() == 2  # target and retain drawn, marked
        assert plot.locator("circle.on-front").count() >= 1
        assert plot.locator("polyline.front").count() == 1

        assert page_.locator("#published tbody tr").count() > 0  # TOFU published numbers beside ours
        assert page_.locator("#published a[href*='open-unlearning']").count() > 0
        page_.locator("#tabs button", has_text="wmdp").click()
        assert page_.locator("#published tbody tr", has_text="RMU").count() > 0
        page_.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    finally:
        context.close()
    assert requests and all(url.startswith("file://") for url in requests), requests


def test_text_from_submissions_is_escaped(browser, site, tmp_path):
    rows = [dict(row) for row in json.loads((site / "leaderboard.json").read_text())["rows"]]
    evil = '<img src=x onerror="window.__pwned=1">'
    rows[0]["method"] = evil
    rows[0]["display_name"] = None
    rows[0]["flags"] = "<script>window.__pwned=2</script>"
    folder = tmp_path / "evil"
    page.write_page(folder, meta={"version": "9.9.9", "content_hash": "sha256:" + "0" * 64},
                    columns=list(rows[0]), rows=rows, published_rows=[],
                    changes={"added": [evil], "changed": {}, "removed": []})
    context, page_, requests, errors = _open(browser, folder)
    try:
        assert page_.evaluate("window.__pwned") is None
        assert page_.locator("#results img, #changes img, #results script").count() == 0
        assert page_.locator("#results tbody", has_text=evil).count() == 1  # shown as plain text
    finally:
        context.close()


MUSE = dict(benchmark="muse-tiny", splits=("forget",), models=("tiny-llama",))
FAST_MS = 200  # "instant" for a person; generous so a loaded CI machine does not flake


@pytest.fixture(scope="module")
def big_rows():
    return t3.table(500) + t3.table(40, **MUSE)


@pytest.fixture(scope="module")
def big_site(tmp_path_factory, big_rows):
    return t3.write_site(tmp_path_factory.mktemp("lb3"), big_rows)


def _row_ids(page_) -> list[str]:
    return page_.eval_on_selector_all("#results tbody tr", "rows => rows.map(r => r.dataset.rowId)")


def _expected_default_order(rows):
    """Rows every seed of which reached the level first (best utility first), then partly reached
    ones, then the rest (not reached, no trajectory, reference rows) in row-id order."""
    def key(r):
        value = r["utility_at_matched"]
        group = 2 if value is None else (0 if r["matched_status"] == "reached" else 1)
        return (group, -(value or 0.0), r["row_id"])
    return [r["row_id"] for r in sorted(rows, key=key)]


def test_matched_columns_curves_and_default_sort(browser, big_site, big_rows):
    context, page_, requests, errors = _open(browser, big_site)
    try:
        assert errors == []
        page_.locator("#tabs button", has_text="tofu-tiny").click()
        tofu = [r for r in big_rows if r["benchmark"] == "tofu-tiny"]
        page_.click("#results-all-rows")
        headers = page_.locator("#results thead th").all_inner_texts()
        assert {"Utility @ matched forgetting", "Forget group", "Utility group"} <= {h.strip(" ▲▼") for h in headers}
        # a tab comparing rectifiers opens sorted by utility at matched forgetting, reached rows first
        assert _row_ids(page_) == _expected_default_order(tofu)
        assert page_.locator("#results th[data-key=utility_at_matched]").get_attribute("aria-sort") == "descending"
        cells = _column(page_, "Utility @ matched")
        by_id = {r["row_id"]: r for r in tofu}
        for row_id, text in zip(_row_ids(page_), cells):
            row = by_id[row_id]
            if row["utility_at_matched"] is not None:
                assert text.startswith(f"{round(row['utility_at_matched'], 4)} [")
                assert ("reached 1/2 seeds" in text) == (row["matched_status"] == "reached 1/2 seeds")
            else:
                assert text == (row["matched_status"] or "—")
        letters = dict(zip(_row_ids(page_), _column(page_, "Utility group")))
        assert all(letters[r["row_id"]] == (r["utility_group"] or "—") for r in tofu)
        cell = page_.locator("#results tbody tr td[title*='forget_prob ≤ 0.12']").first
        assert "the retain model's forget probability" in cell.get_attribute("title")

        # one curve plot per rank group; one curve per unlearned row with a trajectory
        curves = page_.locator("svg.curves")
        assert curves.count() == 6
        with_curve = [r for r in tofu if r["curve"]]
        assert page_.locator("svg.curves g.curve").count() == len(with_curve)
        assert page_.locator("svg.curves g.curve circle").count() == len(with_curve) * len(t3.STEPS)
        title = page_.locator("svg.curves g.curve title").first.text_content()
        assert " + " in title and "final step 50" in title
        # TOFU's level is on forget_prob, not the forget_quality axis: stated, not drawn
        assert page_.locator("svg.curves line.level").count() == 0
        assert "forget_prob ≤ 0.12" in page_.locator("p.level-note").first.inner_text()
        page_.select_option("#filter-rectifier", "gru")
        assert page_.locator("svg.curves g.curve").count() == sum(r["rectifier"] == "gru" for r in with_curve)

        page_.locator("#tabs button", has_text="muse-tiny").click()  # forget axis = matched metric
        assert page_.locator("svg.curves").count() == 1
        assert page_.locator("svg.curves line.level").count() == 1
        assert page_.locator("p.level-note").count() == 0
    finally:
        context.close()
    assert all(url.startswith("file://") for url in requests)


def test_500_rows_filter_and_sort_stay_instant(browser, big_site, big_rows):
    context, page_, _, errors = _open(browser, big_site)
    try:
        page_.locator("#tabs button", has_text="tofu-tiny").click()
        tofu = [r for r in big_rows if r["benchmark"] == "tofu-tiny"]
        assert len(tofu) == 500
        # the first 100 rows, the rest on request (a 500-row table's layout alone is not instant)
        rows = page_.locator("#results tbody tr")
        assert rows.count() == 100 and page_.inner_text("#results-count") == "Showing 100 of 500 rows."
        # timed inside the page, layout included (offsetHeight forces it)
        timings = page_.evaluate("""() => {
            const time = (fn) => { const t0 = performance.now(); fn(); document.body.offsetHeight;
                                   return performance.now() - t0; };
            const th = [...document.querySelectorAll('#results thead th')]
                .find(h => h.textContent.startsWith('forget_quality'));
            const select = document.getElementById('filter-rectifier');
            const plot = document.querySelector('svg.curves');
            const out = {};
            out.sort = time(() => th.click());
            out.sort_again = time(() => th.click());
            out.plots_kept_on_sort = document.contains(plot);
            out.filter = time(() => { select.value = 'gru'; select.dispatchEvent(new Event('change')); });
            out.rows_after_filter = document.getElementById('results-count').textContent;
            out.unfilter = time(() => { select.value = ''; select.dispatchEvent(new Event('change')); });
            return out;
        }""")
        assert timings["plots_kept_on_sort"] is True, "sorting must not redraw the plots"
        gru = sum(r["rectifier"] == "gru" for r in tofu)
        assert timings.pop("rows_after_filter") == f"Showing 100 of {gru} rows."
        # the search box, debounced: the render it triggers is timed by the page itself
        page_.fill("#filter-text", "lora")
        lora = sum(r["parametrization"] == "lora" for r in tofu)
        expect(page_.locator("#results-count")).to_have_text(f"Showing 100 of {lora} rows.")
        timings["search_table"] = float(page_.get_attribute("#results", "data-render-ms"))
        timings["search_curves"] = float(page_.get_attribute("#curves", "data-render-ms"))
        timings.pop("plots_kept_on_sort")
        print("page timings (ms):", {k: round(v, 1) for k, v in timings.items()})
        assert set(timings) == {"sort", "sort_again", "filter", "unfilter", "search_table", "search_curves"}
        slow = {k: v for k, v in timings.items() if v > FAST_MS}
        assert not slow, f"over {FAST_MS} ms at 500 rows: {slow}"
        page_.click("#results-more-rows")
        assert rows.count() == 200 and page_.inner_text("#results-count") == f"Showing 200 of {lora} rows."
        page_.click("#results-all-rows")
        assert rows.count() == lora and page_.locator("#results-more").is_hidden()
        assert set(_column(page_, "Param.")) == {"lora"}
        assert errors == []
    finally:
        context.close()


def test_a_format_2_table_shows_dashes_and_keeps_row_order(browser, tmp_path):
    rows = t3.without_i2(t3.table(40))
    site = t3.write_site(tmp_path / "v2", rows, table_format=2)
    context, page_, _, errors = _open(browser, site)
    try:
        assert errors == []
        assert set(_column(page_, "Utility @ matched")) == {"—"}
        assert set(_column(page_, "Forget group")) == set(_column(page_, "Utility group")) == {"—"}
        assert _row_ids(page_) == sorted(r["row_id"] for r in rows)  # today's default: row-id order
        assert page_.locator("#results th[aria-sort]").count() == 0
        assert page_.locator("svg.curves").count() == 0 and page_.locator("#curves-empty").is_visible()
        assert page_.locator("svg.pareto").count() == 6
    finally:
        context.close()


def test_the_space_copy_names_its_dataset_tag(browser, site, tmp_path):
    record = json.loads((site / "version.json").read_text())
    publish.stage_space(site, "someone/unlearn-bench", "someone/unlearn-bench", record, tmp_path / "space")
    context, page_, requests, errors = _open(browser, tmp_path / "space")
    try:
        assert errors == []
        link = page_.locator("#data-source a")
        assert page_.inner_text("#data-source") == "data: someone/unlearn-bench@v1.0.0"
        assert link.get_attribute("href") == "https://huggingface.co/datasets/someone/unlearn-bench/tree/v1.0.0"
        assert page_.locator("#results tbody tr").count() == 18
    finally:
        context.close()
    assert all(url.startswith("file://") for url in requests)


def test_bad_curves_are_skipped_not_fatal(browser, tmp_path):
    rows = t3.table(20, splits=("forget10",), models=("tiny-llama",))
    unlearned = [r for r in rows if r["role"] == "unlearned" and r["curve"]]
    unlearned[0]["curve"] = "not json"
    unlearned[1]["curve"] = json.dumps([[0, "x", 0.6], [10, None, 0.5]])  # no drawable point
    unlearned[2]["curve"] = json.dumps({"step": 0})
    site = t3.write_site(tmp_path / "bad", rows)
    context, page_, _, errors = _open(browser, site)
    try:
        assert errors == []
        assert page_.locator("svg.curves g.curve").count() == len(unlearned) - 3
    finally:
        context.close()


@pytest.fixture(scope="module")
def attacked_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb-attacks")
    syn.demo_grid(root / "results")
    syn.attack_grid(root / "results")
    build.build([root / "results"], root / "site")
    return root / "site"


def test_attack_columns_and_the_pareto_worst_case_switch(browser, attacked_site):
    context, page_, requests, errors = _open(browser, attacked_site)
    try:
        assert errors == []
        headers = [h.strip(" ▲▼") for h in page_.locator("#results thead th").all_inner_texts()]
        assert {"Recovery quantize-int4", "Recovery relearn-forget-split", "R relearn-forget-split",
                "Worst-case knowledge"} <= set(headers)
        assert "R quantize-int4" not in headers  # R is a relearning ratio
        r_cells = _column(page_, "R relearn-forget-split")
        assert all(" [" in text for text in r_cells if text)  # seed mean with its interval
        toggle = page_.locator("#pareto-worst-case")
        assert page_.locator("#pareto-axis").is_visible() and not toggle.is_checked()
        figure = page_.locator("figure.plot:has(svg.pareto)")
        assert figure.get_attribute("data-forget-axis") == "headline"
        assert "forget_quality of the unattacked models" in figure.locator("p.axis-note").inner_text()
        kept = page_.locator("#results tbody").element_handle()

        toggle.check()
        figure = page_.locator("figure.plot:has(svg.pareto)")
        assert figure.get_attribute("data-forget-axis") == "worst_case"
        note = figure.locator("p.axis-note").inner_text()
        assert "worst case of forget_prob" in note and "quantize-int4, relearn-forget-split" in note
        assert "worst case: forget_prob" in figure.locator("svg.pareto text.axis").first.text_content()
        assert figure.locator("circle.point").count() == 16 and figure.locator("rect.point.ref").count() == 2
        assert "(relearn-forget-split)" in figure.locator("circle.point title").first.text_content()
        assert page_.evaluate("(node) => document.contains(node)", kept)  # the table is not redrawn

        page_.locator("#tabs button", has_text="wmdp").click()  # published numbers only: no switch
        assert page_.locator("#pareto-axis").is_hidden()
        page_.locator("#tabs button", has_text="tofu-tiny").click()  # the switch is remembered per tab
        assert toggle.is_checked()
        assert page_.locator("figure.plot:has(svg.pareto)").get_attribute("data-forget-axis") == "worst_case"
        assert errors == []
    finally:
        context.close()
    assert all(url.startswith("file://") for url in requests)


@pytest.fixture(scope="module")
def meta_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb-meta")
    syn.demo_grid(root / "results")
    mt.write(root / "results")
    build.build([root / "results"], root / "site")
    return root / "site"


def test_the_metrics_tab_and_the_faithfulness_in_the_headers(browser, meta_site, site):
    context, page_, requests, errors = _open(browser, meta_site)
    try:
        headline = page_.locator("#results thead th[data-key='metric:forget_quality']")
        assert headline.inner_text().startswith("forget_quality ↑") and "F 0.93" in headline.inner_text()
        assert "faithfulness 0.93 [0.83, 0.98] on tofu-tiny forget10" in headline.get_attribute("title")
        assert headline.locator(".low-faith-mark").count() == 0
        flagged = page_.locator("#results thead th[data-key='metric:forget_truth_ratio']")
        assert flagged.locator(".low-faith-mark").count() == 1 and "low-faithfulness" in flagged.get_attribute("class")
        assert "F " not in flagged.inner_text()  # not a headline metric: flagged, no value beside it
        assert "Flagged: below 0.7" in flagged.get_attribute("title")
        plain = page_.locator("#results thead th[data-key='metric:privleak']")
        assert plain.get_attribute("title") is None and plain.locator(".low-faith-mark").count() == 0
        assert page_.locator("#metrics-view").is_hidden()

        page_.locator("#tab-metrics").click()
        view = page_.locator("#metrics-view")
        assert view.is_visible() and page_.locator("#results").is_hidden() and page_.locator("#plots").is_hidden()
        assert page_.locator("#metric-threshold").inner_text() == "0.7"
        table = view.locator("article.metric-table[data-benchmark='tofu-tiny']")
        assert table.locator("h3").inner_text() == "tofu-tiny · forget10"
        assert "targets fine-tuned with 5 seeds × 2 learning rates" in table.locator("ul.pools").inner_text()
        rows = table.locator("table.metric-scores tbody tr")
        assert rows.count() == 5
        assert rows.nth(0).locator("td").all_inner_texts()[:2] == ["forget_quality ↑headline", "0.93 [0.83, 0.98]"]
        assert rows.nth(1).get_attribute("class") == "low-faithfulness"
        assert rows.nth(2).locator("td").all_inner_texts()[2:5] == ["—", "—", "—"]  # privleak: no Q, R, HM
        assert rows.nth(3).locator("td").all_inner_texts()[1] == "—"  # model_utility: no faithfulness
        uncomputable = rows.nth(4).locator("td").nth(1)  # null faithfulness spelled as a null interval
        assert uncomputable.inner_text() == "—" and "own retain reference" in uncomputable.get_attribute("title")
        assert table.locator("li.check.does-not-hold").count() == 1 and table.locator("li.check.holds").count() == 1
        assert "ES not measured" in table.locator("li.check.undecided").inner_text()
        assert page_.locator("#tab-metrics").get_attribute("aria-selected") == "true"

        page_.locator("#tabs button", has_text="tofu-tiny").click()
        assert view.is_hidden() and page_.locator("#results").is_visible()
        assert errors == []
    finally:
        context.close()
    assert all(url.startswith("file://") for url in requests)
    context, page_, _, errors = _open(browser, site)  # a build without tables: no tab, plain headers
    try:
        assert page_.locator("#tab-metrics").count() == 0 and page_.locator("th .faith").count() == 0
        assert errors == []
    finally:
        context.close()
