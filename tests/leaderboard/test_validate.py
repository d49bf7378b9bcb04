"""Submission validation: every rejection names the field; every submission in the repo validates."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.leaderboard import lb_synthetic as syn
from common.provenance import config_hash
from leaderboard import validate
from workflows.cli import main as ubench

REPO = Path(__file__).resolve().parents[2]


def _write_raw(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def _errors(path) -> list[str]:
    return validate.validate_path(path).errors


def test_valid_document_passes(tmp_path):
    syn.write(tmp_path, syn.document())
    report = validate.validate_path(tmp_path)
    assert report.ok and len(report.documents) == 1


def test_missing_provenance_is_named(tmp_path):
    doc = syn.document()
    del doc["provenance"]
    _write_raw(tmp_path / "metrics.json", doc)
    errors = _errors(tmp_path)
    assert len(errors) == 1 and errors[0].startswith("metrics.json: provenance: missing")


def test_bad_config_hash_format_and_mismatch(tmp_path):
    doc = syn.document()
    doc["provenance"]["config_hash"] = "md5:abc"
    _write_raw(tmp_path / "a" / "metrics.json", doc)
    assert any("provenance.config_hash: 'md5:abc'" in e for e in _errors(tmp_path / "a"))
    config = {"method": "npo", "lr": 1e-3}
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.yaml").write_text(yaml.safe_dump(config))
    doc = syn.document(config=config)
    _write_raw(tmp_path / "b" / "results" / "x" / "metrics.json", doc)
    assert _errors(tmp_path / "b") == []
    (tmp_path / "b" / "config.yaml").write_text(yaml.safe_dump({**config, "lr": 1e-4}))
    [error] = _errors(tmp_path / "b")
    assert "provenance.config_hash:" in error and "does not match the submitted config.yaml" in error


def test_nan_literal_is_rejected(tmp_path):
    # Python's json writes (and reads) NaN; the file must still be rejected, naming the metric.
    doc = syn.document(metrics={"forget_quality": float("nan"), "model_utility": 0.5})
    (tmp_path / "metrics.json").write_text(json.dumps(doc))
    assert "NaN" in (tmp_path / "metrics.json").read_text()
    errors = _errors(tmp_path)
    assert errors == ["metrics.json: metrics.forget_quality: NaN is not a number; write null when "
                      "a value could not be computed"]
    doc["metrics"]["forget_quality"] = float("inf")
    (tmp_path / "metrics.json").write_text(json.dumps(doc))
    assert "metrics.forget_quality: Infinity" in _errors(tmp_path)[0]


def test_duplicate_row_is_rejected(tmp_path):
    doc = syn.document()
    _write_raw(tmp_path / "one" / "metrics.json", doc)
    _write_raw(tmp_path / "two" / "metrics.json", doc)
    [error] = _errors(tmp_path)
    assert error.startswith("two/metrics.json: identity: duplicate of one/metrics.json")


def test_script_in_method_name_is_rejected(tmp_path):
    doc = syn.document()
    doc["identity"]["method"] = "<script>alert(1)</script>"
    _write_raw(tmp_path / "metrics.json", doc)
    errors = _errors(tmp_path)
    assert any(e.startswith("metrics.json: identity.method:") and "markup" in e for e in errors)
    assert any(e.startswith("metrics.json: identity.method:") and "not a safe name" in e for e in errors)


def test_dotdot_path_is_rejected(tmp_path):
    doc = syn.document()
    doc["identity"]["hyperparameters"]["data_path"] = "../../etc/passwd"
    doc["provenance"]["source"] = "/home/me/runs/log.json"
    _write_raw(tmp_path / "metrics.json", doc)
    errors = _errors(tmp_path)
    assert any(e.startswith("metrics.json: identity.hyperparameters.data_path:") and "'..'" in e for e in errors)
    assert any(e.startswith("metrics.json: provenance.source:") and "absolute path" in e for e in errors)
    doc = syn.document()
    doc["identity"]["model"] = "..hidden"
    _write_raw(tmp_path / "metrics.json", doc)
    assert any(e.startswith("metrics.json: identity.model:") for e in _errors(tmp_path))


def test_out_of_range_probability_is_rejected(tmp_path):
    syn.write(tmp_path, syn.document(metrics={"forget_quality": 1.3, "model_utility": 0.5,
                                              "mia_mink_auc": -0.1, "privleak": -80.0}))
    errors = _errors(tmp_path)
    assert len(errors) == 2
    assert any("metrics.forget_quality: 1.3 is outside [0, 1]" in e for e in errors)
    assert any("metrics.mia_mink_auc: -0.1 is outside [0, 1]" in e for e in errors)


def test_cli_exits_nonzero_naming_the_field(tmp_path, capsys):
    doc = syn.document()
    del doc["provenance"]
    _write_raw(tmp_path / "metrics.json", doc)
    assert ubench(["leaderboard", "validate", str(tmp_path / "metrics.json")]) == 1
    assert "provenance: missing" in capsys.readouterr().err
    syn.write(tmp_path / "ok", syn.document())
    assert ubench(["leaderboard", "validate", str(tmp_path / "ok")]) == 0


def _submissions():
    return sorted(p for p in (REPO / "submissions").iterdir() if p.is_dir())


@pytest.mark.parametrize("submission", _submissions(), ids=lambda p: p.name)
def test_every_submission_in_the_repository_validates(submission):
    report = validate.validate_path(submission)
    assert report.errors == [], "\n".join(report.errors)
    assert report.documents, f"{submission.name} holds no metrics.json"
    assert any(p.name in validate.CONFIG_NAMES for p in submission.iterdir()), \
        f"{submission.name} must include the config it ran (config.yaml)"


def test_example_submission_hash_matches_its_config():
    example = REPO / "submissions" / "example-npo-gru"
    config = yaml.safe_load((example / "config.yaml").read_text())
    [metrics] = list(example.rglob("metrics.json"))
    assert json.loads(metrics.read_text())["provenance"]["config_hash"] == config_hash(config)
