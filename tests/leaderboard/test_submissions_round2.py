"""Submission, publish and report defects of issue #28: every test here fails on the code before the fix."""
from __future__ import annotations

import json

from tests.leaderboard import lb_synthetic as syn
from leaderboard import build


# ---- what a result is ------------------------------------------------------------------------

def test_identical_results_with_another_peak_memory_keep_the_version(tmp_path):
    syn.demo_grid(tmp_path / "a")
    first = build.build([tmp_path / "a"], tmp_path / "site")
    for path in (tmp_path / "a").rglob("metrics.json"):
        document = json.loads(path.read_text())
        document["cost"]["peak_memory_bytes"] += 4096  # another allocator, the same results
        path.write_text(json.dumps(document))
    again = build.build([tmp_path / "a"], tmp_path / "site")
    assert again["content_hash"] == first["content_hash"]
    assert again["bump"] == "none" and again["version"] == first["version"]
