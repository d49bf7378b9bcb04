"""`corpus: {lines: raw}`: the WMDP corpora as open-unlearning / SAGO train them (the JSON lines
verbatim, Hugging Face `text` loader) beside the default `text` field of each line."""
from __future__ import annotations

import json

import pytest

from evaluation import benchmarks
from evaluation.benchmarks.wmdp import data as wmdp_data

REAL = benchmarks.get("wmdp")


def _fake(tmp_path):
    corpora = tmp_path / "wmdp-corpora"
    corpora.mkdir()
    forget = [json.dumps({"title": f"t{i}", "text": f"bio forget document {i}", "doi": "d"}) for i in range(3)]
    (corpora / "bio-forget-corpus.jsonl").write_text("\n".join(forget) + "\n\n")
    (corpora / "bio-retain-corpus.jsonl").write_text(json.dumps("a plain string document") + "\n")
    return wmdp_data.WmdpData(tmp_path, {}, {}, {}, "fake", (corpora,)), forget


def test_raw_lines_are_the_json_lines_verbatim_and_text_is_the_field(tmp_path):
    data, forget = _fake(tmp_path)
    raw = REAL.corpora_for_run(data, "bio", {"lines": "raw"})
    assert raw["forget"].items == tuple(forget)          # title / doi / JSON syntax included, blank line skipped
    assert raw["retain"].items == (json.dumps("a plain string document"),)
    text = REAL.corpora_for_run(data, "bio", None)
    assert text["forget"].items == tuple(f"bio forget document {i}" for i in range(3))
    assert REAL.corpora_for_run(data, "bio", {"lines": "text"})["forget"].items == text["forget"].items


def test_unknown_line_mode_and_broken_file_fail_in_raw_mode_too(tmp_path):
    data, _ = _fake(tmp_path)
    with pytest.raises(ValueError, match=r"corpus.lines must be one of text, raw .* got 'json'"):
        REAL.corpora_for_run(data, "bio", {"lines": "json"})
    (tmp_path / "wmdp-corpora" / "bio-forget-corpus.jsonl").write_text(json.dumps({"title": "no text"}) + "\n")
    with pytest.raises(wmdp_data.WmdpDataError, match=r"row 1, field 'text': missing"):
        REAL.corpora_for_run(data, "bio", {"lines": "raw"})


def test_sago_wmdp_trains_on_the_raw_lines():
    from workflows import grid

    runs = grid.build(grid.load_config("config/paper/sago_wmdp.yaml")).runs
    assert {json.dumps(run.hyperparameters.get("corpus"), sort_keys=True) for run in runs} == {'{"lines": "raw"}'}
