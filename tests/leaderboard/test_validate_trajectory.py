"""The optional `trajectory` block (evaluate_every, interface I1): valid blocks pass the result
contract and submission validation; out-of-order steps, a misplaced final point, non-numbers and
out-of-range values are named."""
from __future__ import annotations

import copy
import json
import re

import jsonschema
import pytest

from common import contract
from leaderboard import validate
from tests.leaderboard import lb_synthetic as syn


def with_trajectory(points=None) -> dict:
    doc = syn.document()
    final = {"step": 30, "metrics": copy.deepcopy(doc["metrics"]), "final": True}
    doc["trajectory"] = {"every": 10, "points": points if points is not None else [
        {"step": 10, "metrics": {"forget_prob": 0.6, "model_utility": 0.5, "forget_quality": None}},
        {"step": 20, "metrics": {"forget_prob": 0.3, "model_utility": 0.45, "forget_quality": 0.01}}, final]}
    return doc


def write_raw(root, doc) -> None:
    """Like lb_synthetic.write, without its validation (these documents are meant to be bad)."""
    ident = doc["identity"]
    folder = contract.run_dir(root, ident["benchmark"], ident["split"], ident["model"], ident["method"],
                              ident["rectifier"], ident["seed"], ident["parametrization"])
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"schema_version": contract.SCHEMA_VERSION, **doc}))


def test_a_valid_trajectory_passes_and_becomes_a_table(tmp_path):
    doc = with_trajectory()
    syn.write(tmp_path, doc)
    report = validate.validate_path(tmp_path)
    assert report.ok, report.errors
    contract.validate_metrics(doc)
    table = contract.trajectory_table(doc["trajectory"])
    assert table["step"].tolist() == [10, 20, 30] and table["final"].tolist() == [False, False, True]
    assert table["forget_quality"].isna().tolist() == [True, False, doc["metrics"].get("forget_quality") is None]
    assert all(str(table[c].dtype) == "float64" for c in table.columns[2:])


@pytest.mark.parametrize("change, message", [
    (lambda t: t["points"].reverse(), "not strictly ascending"),
    (lambda t: t["points"][0].update(final=True), "only it, must be the final model"),
    (lambda t: t["points"][-1].pop("final"), "only it, must be the final model"),
    (lambda t: t["points"][-1]["metrics"].update(model_utility=0.123456), "must carry the top-level metrics"),
    (lambda t: t["points"][0]["metrics"].update(forget_prob="high"), "trajectory.points.0.metrics.forget_prob"),
    (lambda t: t["points"][0]["metrics"].update(forget_prob=1.7), r"trajectory.points\[0\].metrics.forget_prob: 1.7 is outside"),
    (lambda t: t.update(every=0), "trajectory.every"),
])
def test_bad_trajectories_are_named(tmp_path, change, message):
    doc = with_trajectory()
    change(doc["trajectory"])
    write_raw(tmp_path, doc)
    errors = validate.validate_path(tmp_path).errors
    assert any(re.search(message, e) for e in errors), errors
    if "outside" not in message:  # ranges are the submission validator's check, not the contract's
        with pytest.raises((ValueError, jsonschema.ValidationError)):
            contract.validate_metrics(json.loads(json.dumps(doc)))


def test_a_diverged_run_has_no_trajectory():
    doc = with_trajectory()
    doc["status"] = {"state": "diverged", "step": 3, "reason": "nan"}
    assert "a diverged run has no trajectory block" in " ".join(contract.trajectory_problems(doc))
