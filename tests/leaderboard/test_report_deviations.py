"""The reproduction report names the config's deviations from the paper next to the rows they
concern, lists them with their text, and lists the runs labelled `extra`."""
from __future__ import annotations

import yaml

from leaderboard import report, report_mapping
from tests.leaderboard import lb_synthetic as syn

ROW = {"source": "test-src", "benchmark": "tofu-tiny", "split": "forget10", "model": "tiny", "label": "NPO",
       "role": "unlearned", "method": "npo", "rectifier": "none", "metrics": {"model_utility": 0.5},
       "note": None, "cite": "c", "url": "https://example.org", "source_title": "t", "protocol": "p",
       "second_hand": False}
PUBLISHED = [ROW, {**ROW, "label": "Target", "role": "target", "method": "target"}]


def test_rows_name_their_deviations_and_the_extras_are_listed(tmp_path, monkeypatch):
    monkeypatch.setattr(report_mapping.published, "load", lambda path=None: [dict(r) for r in PUBLISHED])
    results = tmp_path / "results"
    syn.write(results, syn.document(method="npo", seed=0, variant="full", metrics={"model_utility": 0.48}))
    config = {
        "name": "t", "results_dir": str(results), "models": {"tiny-llama": {"base": "tiny-llama"}},
        "experiments": [
            {"benchmark": "tofu-tiny", "splits": ["forget10"], "models": ["tiny-llama"], "objectives": ["npo"],
             "rectifiers": ["none"], "hyperparameters": {"lr": 1e-5}},
            {"name": "beyond", "label": "extra", "note": "no such branch upstream", "benchmark": "tofu-tiny",
             "splits": ["forget10"], "models": ["tiny-llama"], "objectives": ["ga"], "rectifiers": ["none"]}],
        "report": {"sources": ["test-src"], "models": {"tiny": "tiny-llama"},
                   "deviations": [{"name": "npo-weights", "when": {"objective": "npo"}, "text": "NPO beta differs"},
                                  {"name": "whole-model", "when": {"model": "tiny-llama"}, "text": "ranks differ"}]},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config))
    md = report.write(path, tmp_path / "out")[0].read_text()
    npo = next(line for line in md.splitlines() if "| NPO |" in line)
    target = next(line for line in md.splitlines() if "| Target |" in line)
    assert npo.rstrip(" |").endswith("npo-weights, whole-model")
    assert target.rstrip(" |").endswith("whole-model")      # a method deviation does not concern the target
    assert "| npo-weights | objective: npo | NPO beta differs |" in md
    assert "beyond: ga x none (no such branch upstream)" in md
    assert "scored with evaluator variant tofu-tiny `full`" in md
