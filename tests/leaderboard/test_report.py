"""`ubench report` on a synthetic results folder, and the report blocks of every paper config."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml

from leaderboard import report, report_mapping, report_render
from tests.leaderboard import lb_synthetic as syn
from workflows import grid
from workflows.cli import main

REPO = Path(__file__).resolve().parents[2]
PAPER_CONFIGS = sorted((REPO / "config" / "paper").glob("*.yaml"))


def _published_row(**values):
    row = {"source": "test-src", "benchmark": "tofu-tiny", "split": "forget10", "model": "tiny", "label": "NPO",
           "role": "unlearned", "method": "npo", "rectifier": "none", "metrics": {"model_utility": 0.5},
           "note": None, "cite": "test cite", "url": "https://example.org", "source_title": "Test <table>",
           "protocol": "p", "second_hand": False}
    return {**row, **values}


PUBLISHED = [
    _published_row(),                                                    # in the grid, results for 2 seeds
    _published_row(label="GA", method="ga", metrics={"model_utility": 0.2}),   # in the grid, no results
    _published_row(label="Target", role="target", method="target", metrics={"model_utility": 0.62}),
    _published_row(label="IdkDPO", method="idkdpo"),                     # excluded with a reason
]


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    monkeypatch.setattr(report_mapping.published, "load", lambda path=None: [dict(r) for r in PUBLISHED])
    results = tmp_path / "results"
    config = {
        "name": "test-report", "results_dir": str(results),
        "models": {"tiny-llama": {"base": "tiny-llama"}},
        "experiments": [{"benchmark": "tofu-tiny", "splits": ["forget10"], "models": ["tiny-llama"],
                         "objectives": ["npo", "ga"], "rectifiers": ["none"], "seeds": [0, 1],
                         "hyperparameters": {"lr": 1e-5}}],
        "report": {"sources": ["test-src"], "models": {"tiny": "tiny-llama"},
                   "not_in_grid": [{"when": {"method": "idkdpo"}, "reason": "IdkDPO <is> not run here"}]},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config))
    # a real run records the hyperparameters the DAG gave it: the config's plus the schema's defaults
    hyper = next(run.hyperparameters for run in report.load_grid(path).runs if run.objective == "npo")
    for seed, mu in ((0, 0.48), (1, 0.54)):
        document = syn.document(method="npo", seed=seed, variant="full",
                                metrics={"forget_quality": 0.5, "model_utility": mu})
        document["identity"]["hyperparameters"] = dict(hyper)
        syn.write(results, document)
    syn.write(results, syn.document(role="target", method="target", variant="full",
                                    metrics={"forget_quality": 1e-5, "model_utility": 0.6}))
    return path, results


def test_report_compares_published_with_ours(setup, tmp_path):
    configfile, results = setup
    md_path, html_path = report.write(configfile, tmp_path / "out", cores=3)
    md = md_path.read_text()
    npo = next(line for line in md.splitlines() if "| NPO |" in line and "model_utility" in line)
    cells = [c.strip() for c in npo.strip("|").split("|")]
    assert cells[6] == "0.500" and cells[7] == "0.510" and cells[9] == "2"      # published, ours, seeds
    assert cells[10] == "0.010" and cells[11] == "yes"                          # delta, in interval
    target = next(line for line in md.splitlines() if "| Target |" in line)
    assert "0.600" in target and "n/a (needs >= 2 seeds)" in target
    # GA has no results: the exact snakemake command for its two seeds
    ga = next(line for line in md.splitlines() if "GA (" in line and "snakemake" in line)
    assert f"snakemake --cores 3 --configfile {configfile}" in ga
    assert str(results / "tofu-tiny/forget10/tiny-llama/ga+none/seed0/metrics.json") in ga
    assert "seed1/metrics.json" in ga
    assert "IdkDPO <is> not run here" in md
    page = html_path.read_text()
    assert "IdkDPO &lt;is&gt; not run here" in page and "<is>" not in page
    assert "Test &lt;table&gt;" in page and page.count("<table>") >= 2


def test_report_without_results_says_so(setup, tmp_path):
    configfile, _ = setup
    _, blocks = report.build(configfile, results=[str(tmp_path / "nothing")])
    text = report_render.to_markdown(blocks)
    assert "does not exist yet" in text and "no results" in text


def test_cli_report(setup, tmp_path, capsys):
    configfile, _ = setup
    assert main(["report", "--configfile", str(configfile), "--out", str(tmp_path / "cli"), "--stem", "x"]) == 0
    assert (tmp_path / "cli" / "x.md").is_file() and (tmp_path / "cli" / "x.html").is_file()
    assert "x.md" in capsys.readouterr().out


def test_unknown_source_is_an_error(setup):
    with pytest.raises(ValueError, match="report.sources: 'nope'"):
        report_mapping.published_rows({"sources": ["nope"]})


def test_markdown_escapes_table_pipes_and_html_code_spans():
    blocks = [report_render.table(["a|b"], [["x|y"]]), report_render.paragraph("run `a < b` & <x>")]
    md = report_render.to_markdown(blocks)
    assert "a\\|b" in md and "x\\|y" in md
    page = report_render.to_html(blocks, "t")
    assert "<code>a &lt; b</code> &amp; &lt;x&gt;" in page


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=lambda p: p.stem)
def test_every_published_row_of_a_paper_config_is_mapped_or_excused(path):
    config = grid.load_config(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", grid.UnusedOverride)
        built = grid.build(config)
    assert "report" in config, f"{path.name} has no report: block"
    assert not report_mapping.unmapped(config, built), [m.missing for m in report_mapping.unmapped(config, built)]
    matches = report_mapping.match_all(config, built)
    for match in matches:
        assert match.in_grid or match.excluded


def test_report_grid_carries_the_schema_defaults_the_dag_runs_with():
    # The Snakefile's `validate` fills schema defaults into every run's hyperparameters before the
    # results record them; a report grid without them hashed every real row as "not a run of this config".
    from pathlib import Path

    from leaderboard.report import load_grid

    default = Path(__file__).resolve().parents[2] / "config" / "default.yaml"
    runs = load_grid(default).runs
    assert runs and all({"gradient_checkpointing", "master_dtype"} <= set(run.hyperparameters) for run in runs)
