"""Submission, publish and report defects of issue #28: every test here fails on the code before the fix."""
from __future__ import annotations

import json
import time

import pytest

from tests.leaderboard import lb_synthetic as syn
from leaderboard import bounded_yaml, build, validate


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


# ---- submitted YAML ----------------------------------------------------------------------------

def _alias_bomb() -> str:
    """Nine anchors of nine aliases each: 9**9 (387 million) strings once expanded."""
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for previous, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_in_a_submitted_config_is_refused_at_once(tmp_path):
    bomb = _alias_bomb()
    assert len(bomb.encode()) < 400
    submission = tmp_path / "sub"
    syn.write(submission / "results", syn.document())
    (submission / "config.yaml").write_text(bomb)
    started = time.monotonic()
    errors = validate.validate_path(submission).errors
    assert time.monotonic() - started < 5
    assert any("config.yaml" in e and "aliases expand to more than" in e for e in errors), errors


def test_bounded_yaml_keeps_ordinary_anchors_and_refuses_recursion_and_depth():
    assert bounded_yaml.load("base: &b {lr: 1.0e-3}\nrun: *b\n") == {"base": {"lr": 1e-3}, "run": {"lr": 1e-3}}
    with pytest.raises(bounded_yaml.YamlLimitError, match="contains it"):
        bounded_yaml.load("a: &a [1, *a]\n")
    with pytest.raises(bounded_yaml.YamlLimitError, match="levels deep"):
        bounded_yaml.load("[" * 500 + "]" * 500)
    with pytest.raises(bounded_yaml.YamlLimitError, match="time limit"):
        bounded_yaml.load("a: [" + ", ".join(["1"] * 1000) + "]", seconds=0.0)
