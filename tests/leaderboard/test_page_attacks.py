"""What the page gets for attacks, without a browser: the worst-case axis per tab in data.js, the
switch in index.html and the code that reads them in app.js (test_page.py drives them in chromium)."""
from __future__ import annotations

import json

from leaderboard import build, page
from tests.leaderboard import lb_synthetic as syn

PREFIX = "window.UBENCH_DATA = "


def _data(site) -> dict:
    text = (site / "assets" / "data.js").read_text(encoding="utf-8")
    assert text.startswith(PREFIX)
    return json.loads(text[len(PREFIX):].rstrip().rstrip(";"))


def test_a_tab_with_attacks_gets_its_worst_case_axis_and_the_switch(tmp_path):
    syn.demo_grid(tmp_path / "results")
    syn.attack_grid(tmp_path / "results")
    build.build([tmp_path / "results"], tmp_path / "site")
    data = _data(tmp_path / "site")
    assert data["attack_axes"] == {"tofu-tiny": {"knowledge_metric": "forget_prob",
                                                 "attacks": ["quantize-int4", "relearn-forget-split"]}}
    unlearned = [r for r in data["rows"] if r["role"] == "unlearned"]
    assert all(isinstance(r["worst_case_knowledge"], float) for r in unlearned)
    assert all(isinstance(r["attack:relearn-forget-split:R"], float) for r in unlearned)
    html = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert 'id="pareto-worst-case"' in html and 'id="pareto-axis"' in html and "hidden" in html
    app = (tmp_path / "site" / "assets" / "app.js").read_text(encoding="utf-8")
    assert "DATA.attack_axes" in app and "r.worst_case_knowledge" in app and "data-forget-axis" in app


def test_no_attacks_no_axis(tmp_path):
    syn.demo_grid(tmp_path / "results")
    build.build([tmp_path / "results"], tmp_path / "site")
    assert _data(tmp_path / "site")["attack_axes"] == {}


def test_attack_axes_reads_only_the_labels_a_row_has():
    rows = [{"benchmark": "tofu-tiny", "knowledge_metric": "forget_prob", "worst_case_knowledge": 0.3,
             "attack:quantize-int4:status": "ok", "attack:prompt-prefix:status": None},
            {"benchmark": "muse-tiny", "knowledge_metric": None, "worst_case_knowledge": None,
             "attack:quantize-int4:status": None}]
    assert page.attack_axes(rows) == {"tofu-tiny": {"knowledge_metric": "forget_prob", "attacks": ["quantize-int4"]}}
