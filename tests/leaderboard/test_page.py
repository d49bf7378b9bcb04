"""The offline web page in a real headless chromium: loads from file://, sorts, filters, plots, no network."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.leaderboard import lb_synthetic as syn
from leaderboard import build, page

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium found (apt-get install -y chromium)"),
]


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
        page_.fill("#filter-text", "simnpo")
        assert rows.count() == 4 and set(_column(page_, "Objective")) == {"simnpo"}
        page_.fill("#filter-text", "")

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
    rows = [dict(row) for row in __import__("json").loads((site / "leaderboard.json").read_text())["rows"]]
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
