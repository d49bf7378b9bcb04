"""Board and submission defects of issue #15: every test here fails on the board before the fix."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from tests.leaderboard import lb_synthetic as syn
from leaderboard import aggregate, build, publish, validate
from workflows.cli import main as ubench


def _rows(site):
    return json.loads((site / "leaderboard.json").read_text())["rows"]


def _write_raw(path, document, text=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text is not None else json.dumps(document), encoding="utf-8")
    return path


# ---- the board -------------------------------------------------------------------------------

def test_a_run_with_other_hyperparameters_is_its_own_row_not_a_seed(tmp_path):
    root = tmp_path / "r"
    for seed in (0, 1):
        syn.write(root, syn.document(method="ga", seed=seed,
                                     metrics={"forget_quality": 0.4 + seed / 100, "model_utility": 0.5}))
    diverged = syn.document(method="ga", seed=2, state="diverged", step=3, metrics={})
    diverged["identity"]["hyperparameters"] = {"lr": 1e-2}
    syn.write(root, diverged)
    build.build([root], tmp_path / "site")
    ga = [row for row in _rows(tmp_path / "site") if row["method"] == "ga"]
    assert len(ga) == 2
    healthy = next(row for row in ga if row["n_seeds"] == 2)
    assert healthy["comparable"] and healthy["pareto_rank"] == 1 and healthy["status"] == "ok"
    other = next(row for row in ga if row["n_seeds"] == 1)
    assert other["hyperparameters"] == '{"lr":0.01}' and other["status"] == "diverged"
    assert healthy["row_id"] != other["row_id"]
    assert healthy["hyperparameters_hash"] == aggregate.hyperparameters_hash({"lr": 1e-5})


def test_identical_rebuild_with_other_timings_keeps_hash_and_changes_nothing(tmp_path):
    syn.demo_grid(tmp_path / "a")
    first = build.build([tmp_path / "a"], tmp_path / "site")
    for path in (tmp_path / "a").rglob("metrics.json"):
        document = json.loads(path.read_text())
        document["cost"]["train_seconds"] *= 1.7  # a busier machine, the same results
        path.write_text(json.dumps(document))
    again = build.build([tmp_path / "a"], tmp_path / "site")
    assert again["content_hash"] == first["content_hash"]
    assert again["bump"] == "none" and again["changes"]["changed"] == {}


def test_ranking_compares_only_rows_of_one_benchmark_and_evaluator_variant(tmp_path):
    root = tmp_path / "r"
    # legacy is made the main variant of tofu-tiny by being the most common one
    for method, fq in (("ga", 0.5), ("npo", 0.4), ("simnpo", 0.3)):
        syn.write(root, syn.document(method=method, variant="legacy",
                                     metrics={"forget_quality": fq, "model_utility": 0.5}))
    syn.write(root, syn.document(method="graddiff", variant="full",
                                 metrics={"forget_quality": 0.9, "model_utility": 0.9}))
    syn.write(root, syn.document(benchmark="tofu", method="graddiff", variant="legacy",
                                 metrics={"forget_quality": 0.99, "model_utility": 0.99}))
    rows = aggregate.aggregate(aggregate.load_results([root]))
    ranks = {(r["benchmark"], r["method"], r["evaluator_variant"]): r["pareto_rank"] for r in rows}
    assert ranks[("tofu-tiny", "ga", "legacy")] == 1  # not dominated by rows of another variant/benchmark
    assert ranks[("tofu", "graddiff", "legacy")] == 1
    assert ranks[("tofu-tiny", "graddiff", "full")] is None  # not the main variant: flagged, unranked


def test_rows_ranked_in_groups_of_benchmark_split_model_and_variant():
    rows = [dict(row_id=str(i), comparable=True, role="unlearned", benchmark="tofu-tiny", split="forget10",
                 model="m", evaluator_variant=variant, forget_metric="forget_quality",
                 utility_metric="model_utility", **{"metric:forget_quality": fq, "metric:model_utility": 0.5})
            for i, (variant, fq) in enumerate((("full", 0.9), ("legacy", 0.1)))]
    aggregate._rank(rows)
    assert [row["pareto_rank"] for row in rows] == [1, 1]


def test_row_whose_evaluator_belongs_to_another_benchmark_is_refused(tmp_path):
    document = syn.document(benchmark="muse", split="news", metrics={"knowmem_forget": 0.3})
    document["evaluator"]["name"] = "ubench-tofu"
    _write_raw(tmp_path / "metrics.json", document)
    [error] = validate.validate_path(tmp_path).errors
    assert error.startswith("metrics.json: evaluator.name: 'ubench-tofu' is not 'ubench-muse', the evaluator "
                            "of 'muse' rows")
    good = syn.document()
    good["evaluator"]["name"] = "ubench-tofu"  # tofu-tiny is a TOFU benchmark
    _write_raw(tmp_path / "metrics.json", good)
    assert validate.validate_path(tmp_path).ok


def test_metric_name_cannot_overwrite_a_reserved_column(tmp_path):
    document = syn.document(metrics={"forget_quality": 0.5, "model_utility": 0.5,
                                     "forget_quality:ci_low": 0.49})
    _write_raw(tmp_path / "metrics.json", document)
    errors = validate.validate_path(tmp_path).errors
    assert any("metrics.'forget_quality:ci_low': ':' is reserved" in e for e in errors)


# ---- submissions -----------------------------------------------------------------------------

def test_symlinked_config_is_refused_and_never_read(tmp_path):
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("token: hf_SECRET_VALUE_1234\n: : not yaml [\n")
    submission = tmp_path / "sub"
    syn.write(submission, syn.document())
    (submission / "config.yaml").symlink_to(secret)
    report = validate.validate_path(submission)
    assert report.errors == ["'config.yaml': <file>: symbolic links are not accepted (not followed); "
                             "copy the file into the submission"]
    assert "SECRET" not in "\n".join(report.errors)


def test_symlinked_results_folder_is_refused_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    syn.write(elsewhere, syn.document())
    submission = tmp_path / "sub"
    submission.mkdir()
    os.symlink(elsewhere, submission / "results")
    report = validate.validate_path(submission)
    assert not report.documents and len(report.errors) == 1 and "symbolic links" in report.errors[0]


def test_control_characters_are_refused_and_escaped(tmp_path):
    document = syn.document()
    document["identity"]["display_name"] = "nice\x1b[31m\u202eevil"
    _write_raw(tmp_path / "metrics.json", document)
    errors = validate.validate_path(tmp_path).errors
    assert any(e.startswith("metrics.json: identity.display_name:") and "control or non-printing" in e
               for e in errors)
    assert not any("\x1b" in e or "\u202e" in e for e in errors)
    folder = tmp_path / "sub" / "bad\x07name"
    _write_raw(folder / "metrics.json", syn.document())
    errors = validate.validate_path(tmp_path / "sub").errors
    assert errors and "control or non-printing" in errors[0] and "\x07" not in errors[0]


def test_duplicate_keys_are_refused(tmp_path):
    text = json.dumps(syn.document())
    text = text.replace('"metrics": {', '"metrics": {"forget_quality": 0.99, ', 1)
    _write_raw(tmp_path / "metrics.json", None, text)
    [error] = validate.validate_path(tmp_path).errors
    assert error == ("metrics.json: <file>: duplicate key 'forget_quality': a JSON object may name each "
                     "key once (readers disagree on which value wins)")


def test_deep_json_is_refused_without_crashing_validate_or_build(tmp_path):
    root = tmp_path / "r"
    _write_raw(root / "metrics.json", None, "[" * 100_000 + "]" * 100_000)
    [error] = validate.validate_path(root).errors
    assert "nested 100000 levels deep (limit 32)" in error
    with pytest.raises(aggregate.AggregationError, match="levels deep"):
        build.build([root], tmp_path / "site")


def test_oversized_file_is_refused_before_reading(tmp_path):
    document = syn.document()
    document["identity"]["hyperparameters"]["padding"] = "x" * (validate.MAX_FILE_BYTES + 1)
    _write_raw(tmp_path / "metrics.json", document)
    [error] = validate.validate_path(tmp_path).errors
    assert f"over the {validate.MAX_FILE_BYTES}-byte limit" in error


def test_same_results_relabelled_as_another_seed_are_refused(tmp_path):
    root = tmp_path / "r"
    syn.write(root, syn.document(seed=0))
    copy = syn.document(seed=1)  # identical metrics, new seed label and config hash
    syn.write(root, copy)
    errors = validate.validate_path(root).errors
    assert len(errors) == 1 and "seed 1 has the same metrics as seed 0" in errors[0]
    with pytest.raises(aggregate.AggregationError, match="each seed must be a separate run"):
        build.build([root], tmp_path / "site")


def test_relabelled_per_item_results_are_refused_even_with_edited_metrics(tmp_path):
    root = tmp_path / "r"
    items = pd.DataFrame({"eval_set": ["forget"] * 3, "item_index": [0, 1, 2], "prob": [0.1, 0.2, 0.3],
                          "perturbed_losses": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]})  # array cells, as written
    for seed, fq in ((0, 0.5), (1, 0.51)):
        path = syn.write(root, syn.document(seed=seed, metrics={"forget_quality": fq, "model_utility": 0.5}))
        items.to_parquet(path.with_name("per_item.parquet"), index=False)
    [error] = validate.validate_path(root).errors
    assert "seed 1 has the same per-item results as seed 0" in error


def test_spreadsheet_formulas_are_escaped_in_csv(tmp_path):
    document = syn.document()
    document["identity"]["display_name"] = "=1+2+cmd|' /C calc'!A0".replace("'", "")
    document["flags"] = {"-cmd": True}
    syn.write(tmp_path / "r", document)
    build.build([tmp_path / "r"], tmp_path / "site")
    csv = pd.read_csv(tmp_path / "site" / "leaderboard.csv")
    assert csv.loc[0, "display_name"] == "'=1+2+cmd| /C calc!A0"
    assert csv.loc[0, "flags"] == "'-cmd"
    assert _rows(tmp_path / "site")[0]["display_name"].startswith("=")  # JSON keeps the value


# ---- publishing --------------------------------------------------------------------------------

def test_local_publish_refuses_a_folder_it_did_not_create(tmp_path, capsys):
    syn.demo_grid(tmp_path / "r", seeds=(0,))
    build.build([tmp_path / "r"], tmp_path / "site")
    mine = tmp_path / "mine"
    (mine / "data").mkdir(parents=True)
    (mine / "data" / "precious.csv").write_text("keep me")
    (mine / "README.md").write_text("my notes")
    args = ["leaderboard", "publish", "--build", str(tmp_path / "site"), "--repo", "a/b",
            "--target", f"local:{mine}"]
    assert ubench(args) == 2
    assert "not empty and was not created by" in capsys.readouterr().err
    assert (mine / "data" / "precious.csv").read_text() == "keep me"
    assert (mine / "README.md").read_text() == "my notes"
    assert ubench(args + ["--force"]) == 0
    assert (mine / "tags.json").is_file()
    fresh = tmp_path / "fresh"
    first = publish.publish(tmp_path / "site", "a/b", target=f"local:{fresh}")
    again = publish.publish(tmp_path / "site", "a/b", target=f"local:{fresh}")  # its own folder
    assert first.published and not again.published
