"""Submission, publish and report defects of issue #28: every test here fails on the code before the fix."""
from __future__ import annotations

import json
import shutil
import time

import pytest
import yaml

from workflows import grid

from tests.leaderboard import lb_synthetic as syn
from leaderboard import aggregate, bounded_yaml, build, publish, publish_marker, validate


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


# ---- evaluator, folder and range checks ------------------------------------------------------

@pytest.mark.parametrize("name", ["my-own-evaluator", "lm-eval", "ubench-muse-knowmem", "ubench-muse", "ubench"])
def test_only_the_suites_evaluator_of_the_rows_family_is_accepted(tmp_path, name):
    document = syn.document()  # a tofu-tiny row
    document["evaluator"]["name"] = name
    syn.write(tmp_path, document)
    errors = validate.validate_path(tmp_path).errors
    assert len(errors) == 1 and f"evaluator.name: {name!r} is not 'ubench-tofu'" in errors[0], errors


def test_a_diverged_run_may_say_not_evaluated_a_finished_one_may_not(tmp_path):
    diverged = syn.document(state="diverged", step=3, metrics={})
    diverged["evaluator"]["name"] = "not-evaluated"
    syn.write(tmp_path / "a", diverged)
    assert validate.validate_path(tmp_path / "a").ok
    finished = syn.document()
    finished["evaluator"]["name"] = "not-evaluated"
    syn.write(tmp_path / "b", finished)
    assert not validate.validate_path(tmp_path / "b").ok


def test_identity_must_agree_with_the_folders_it_sits_in(tmp_path):
    path = syn.write(tmp_path, syn.document(method="npo", rectifier="gru"))
    document = json.loads(path.read_text())
    document["identity"]["method"] = "simnpo"  # relabelled in place: the folder still says npo+gru
    path.write_text(json.dumps(document))
    [error] = validate.validate_path(tmp_path).errors
    assert "identity: says method+rectifier[+parametrization] 'simnpo+gru' but the file sits in folder 'npo+gru'" \
        in error
    seed_path = syn.write(tmp_path / "s", syn.document(seed=1))
    document = json.loads(seed_path.read_text())
    document["identity"]["seed"] = 4
    seed_path.write_text(json.dumps(document))
    [error] = validate.validate_path(tmp_path / "s").errors
    assert "says seed 'seed4' but the file sits in folder 'seed1'" in error


@pytest.mark.parametrize("benchmark, split, metric, value", [
    ("muse", "news", "knowmem_forget", -300.0), ("muse", "news", "knowmem_retain", 999.0),
    ("muse-tiny", "news", "verbmem_forget", 101.0), ("muse", "news", "privleak", -1e12),
    ("tofu", "forget10", "privleak", -100.5), ("wmdp", "bio", "wmdp_bio", 1.5), ("wmdp", "bio", "mmlu", -0.01),
    ("rwku", "batch-1-4", "forget_qa", 1.2), ("rwku", "batch-1-4", "fluency", -0.5),
    ("rwku", "batch-1-4", "mia_fm_loss", 0.3)])
def test_every_familys_metrics_are_held_to_their_declared_range(tmp_path, benchmark, split, metric, value):
    syn.write(tmp_path, syn.document(benchmark=benchmark, split=split, metrics={metric: value}))
    errors = validate.validate_path(tmp_path).errors
    assert len(errors) == 1 and f"metrics.{metric}: {value} is outside" in errors[0], errors


@pytest.mark.parametrize("benchmark, split, metrics", [
    ("muse", "news", {"knowmem_forget": 57.3, "knowmem_retain": 0.41, "privleak": -99.9, "verbmem_forget": 0.0}),
    ("muse", "news", {"privleak": 8.5e3}),  # no finite upper end: AUC_ref may be near 0
    ("rwku", "batch-1-4", {"forget_qa": 0.3, "fluency": 5.9, "mia_fm_loss": -2.1, "mia_fm_mink20": 0.4}),
    ("wmdp", "bio", {"wmdp_bio": 0.25, "mmlu": 0.31})])
def test_values_inside_the_declared_ranges_pass(tmp_path, benchmark, split, metrics):
    syn.write(tmp_path, syn.document(benchmark=benchmark, split=split, metrics=metrics))
    assert validate.validate_path(tmp_path).ok, validate.validate_path(tmp_path).errors


def test_every_declared_metric_has_a_range_from_its_definition():
    from evaluation.benchmarks import BENCHMARKS
    from evaluation.metrics.registry import UNBOUNDED

    unbounded = {(name, info.name) for name, bench in BENCHMARKS.items() for info in bench.metrics
                 if info.bounds == UNBOUNDED}
    # Min-K%++ averages standardised log-probabilities: either sign, no bound by definition
    assert {metric for _, metric in unbounded} == {"mia_fm_mink20", "mia_rm_mink20"}


# ---- a submission's rows are its own ---------------------------------------------------------

def _submitted(root, submitter, **fields):
    document = syn.document(**fields)
    document["identity"]["submitter"] = submitter
    return syn.write(root / "submissions" / submitter / "results", document)


def test_a_submitted_seed_with_our_hyperparameters_never_joins_our_row(tmp_path):
    ours = tmp_path / "results"
    for method, value in (("ga", 0.9), ("graddiff", 0.8), ("npo", 0.7)):
        syn.write(ours, syn.document(method=method, metrics={"forget_quality": value, "model_utility": value}))
    # the same method, rectifier, hyperparameters and variant as our npo row, another seed, better numbers
    _submitted(tmp_path, "mallory", method="npo", seed=1, metrics={"forget_quality": 1.0, "model_utility": 1.0})
    rows = aggregate.aggregate(aggregate.load_results([ours, tmp_path / "submissions" / "mallory" / "results"]))
    npo = {row["submitter"]: row for row in rows if row["method"] == "npo"}
    assert set(npo) == {None, "mallory"}
    # ours stays behind ga and graddiff (and the submitted row, which dominates all three): rank 4,
    # never rank 1 by borrowing the submitted seed
    assert npo[None]["n_seeds"] == 1 and npo[None]["seeds"] == "0" and npo[None]["pareto_rank"] == 4
    assert npo[None]["metric:forget_quality"] == 0.7
    assert npo["mallory"]["row_id"] == "tofu-tiny/forget10/tiny-llama/submissions/mallory/npo+none/ours/hp-" + \
        npo[None]["row_id"].rsplit("hp-", 1)[1]
    assert npo["mallory"]["n_seeds"] == 1 and npo["mallory"]["pareto_rank"] == 1


def test_a_submission_must_name_its_submitter_the_folder_name(tmp_path):
    path = _submitted(tmp_path, "alice")
    document = json.loads(path.read_text())
    del document["identity"]["submitter"]
    path.write_text(json.dumps(document))
    [error] = validate.validate_path(tmp_path / "submissions" / "alice").errors
    assert "identity.submitter: missing; every row of submissions/alice/ carries its submitter" in error
    document["identity"]["submitter"] = "bob"
    path.write_text(json.dumps(document))
    [error] = validate.validate_path(tmp_path / "submissions" / "alice").errors
    assert "identity.submitter: 'bob' is not this submission's folder name 'alice'" in error


def test_a_submitted_file_outside_the_contract_layout_is_refused(tmp_path):
    document = syn.document()
    document["identity"]["submitter"] = "alice"
    loose = tmp_path / "submissions" / "alice" / "results" / "mine" / "metrics.json"
    loose.parent.mkdir(parents=True)
    loose.write_text(json.dumps(document))
    [error] = validate.validate_path(tmp_path / "submissions" / "alice").errors
    assert "a submission's metrics.json must sit at submissions/alice/results/tofu-tiny/forget10/tiny-llama/" \
           "npo+none/seed0/metrics.json" in error


def test_a_submitted_reference_row_never_replaces_ours(tmp_path):
    ours = tmp_path / "results"
    syn.demo_grid(ours, seeds=(0,))
    _submitted(tmp_path, "mallory", role="target", method="target",
               metrics={"forget_quality": 1e-5, "model_utility": 0.99})
    rows = aggregate.aggregate(aggregate.load_results([ours, tmp_path / "submissions" / "mallory" / "results"]))
    targets = [row for row in rows if row["role"] == "target"]
    assert len(targets) == 2
    references = aggregate._reference_rows(rows)
    assert references[("tofu-tiny", "forget10", "tiny-llama", "ours", "target")]["submitter"] is None


# ---- near-duplicates -------------------------------------------------------------------------

def _items(shift=0.0, scale=1.0):
    import pandas as pd

    return pd.DataFrame({"eval_set": ["forget"] * 4, "item_index": [0, 1, 2, 3],
                         "prob": [(p + shift) * scale for p in (0.11, 0.23, 0.37, 0.52)],
                         "losses": [[1.5 * scale, 2.5], [3.1, 4.2], [5.0, 6.5], [0.7, 0.9 * scale]]})


@pytest.mark.parametrize("jitter", [1e-9, 1e-12])
def test_seeds_relabelled_with_jitter_are_refused(tmp_path, jitter):
    root = tmp_path / "r"
    metrics = {"forget_quality": 0.4123, "model_utility": 0.5567, "forget_truth_ratio": 0.61}
    syn.write(root, syn.document(seed=0, metrics=metrics))
    syn.write(root, syn.document(seed=1, metrics={k: v * (1 + jitter) for k, v in metrics.items()}))
    [error] = validate.validate_path(root).errors
    assert "seed 1 has the same metrics as seed 0" in error
    for seed, scale in ((0, 1.0), (1, 1 + jitter)):  # per-item tables with jitter, metrics edited apart
        path = syn.write(root, syn.document(seed=seed, metrics={"forget_quality": 0.4 + seed / 10,
                                                                "model_utility": 0.5}))
        _items(scale=scale).to_parquet(path.with_name("per_item.parquet"), index=False)
    [error] = validate.validate_path(root).errors
    assert "seed 1 has the same per-item results as seed 0" in error


def test_separate_runs_are_not_near_duplicates(tmp_path):
    root = tmp_path / "r"
    for seed, shift in ((0, 0.0), (1, 1e-3)):
        path = syn.write(root, syn.document(seed=seed, metrics={"forget_quality": 0.4, "model_utility": 0.5}))
        _items(shift=shift).to_parquet(path.with_name("per_item.parquet"), index=False)
    assert validate.validate_path(root).ok  # equal metrics (rounded), different items: two runs


def test_another_rows_numbers_relabelled_as_another_method_are_refused(tmp_path):
    ours = tmp_path / "results"
    syn.demo_grid(ours, seeds=(0,))
    original = next(ours.rglob("graddiff+gru/seed0/metrics.json"))
    _items().to_parquet(original.with_name("per_item.parquet"), index=False)
    copied = json.loads(original.read_text())
    copy = _submitted(tmp_path, "mallory", method="simnpo", rectifier="sago", metrics=copied["metrics"])
    _items(scale=1 + 1e-9).to_parquet(copy.with_name("per_item.parquet"), index=False)
    submitted = tmp_path / "submissions" / "mallory" / "results"
    assert validate.validate_path(submitted).ok  # alone it looks fine: the copy shows against the board
    with pytest.raises(aggregate.AggregationError) as refused:
        aggregate.load_results([ours, submitted])
    assert "the per-item results of simnpo+sago seed 0, submitted by mallory are those of another row, " \
           "graddiff+gru seed 0" in str(refused.value)
    copy.with_name("per_item.parquet").unlink()  # metrics alone: the same copy
    original.with_name("per_item.parquet").unlink()
    with pytest.raises(aggregate.AggregationError, match="the metrics of simnpo\\+sago seed 0, submitted by mallory"):
        aggregate.load_results([ours, submitted])


def test_our_own_rows_with_identical_results_stay_rows(tmp_path):
    """GA has one task loss, so a rectifier may leave its update unchanged: identical models are real."""
    root = tmp_path / "r"
    for rectifier in ("none", "pcgrad"):
        path = syn.write(root, syn.document(method="ga", rectifier=rectifier,
                                            metrics={"forget_quality": 0.2, "model_utility": 0.3}))
        _items().to_parquet(path.with_name("per_item.parquet"), index=False)
    assert validate.validate_path(root).ok


# ---- local publish ---------------------------------------------------------------------------

@pytest.fixture
def site(tmp_path):
    syn.demo_grid(tmp_path / "r", seeds=(0,))
    build.build([tmp_path / "r"], tmp_path / "site")
    return tmp_path / "site"


@pytest.mark.parametrize("tags", ['{"v1.0.0": {"note": "my own release list"}}', '["not", "a", "mapping"]'])
def test_local_publish_never_replaces_a_folder_with_an_unrelated_tags_json(site, tmp_path, tags):
    mine = tmp_path / "mine"
    (mine / "data").mkdir(parents=True)
    (mine / "data" / "precious.csv").write_text("keep me")
    (mine / "tags.json").write_text(tags)
    with pytest.raises(publish.PublishError, match="no valid .ubench-publish.json; a tags.json alone does not count"):
        publish.publish(site, "a/b", target=f"local:{mine}")
    assert (mine / "data" / "precious.csv").read_text() == "keep me"
    assert (mine / "tags.json").read_text() == tags


def test_a_killed_first_local_publish_is_resumed_by_the_rerun(site, tmp_path, monkeypatch):
    folder = tmp_path / "dry"
    real = publish._replace_local

    def killed(staged, into):  # the process dies with data/ replaced, the rest not yet
        shutil.copytree(staged / "data", into / "data")
        raise KeyboardInterrupt

    monkeypatch.setattr(publish, "_replace_local", killed)
    with pytest.raises(KeyboardInterrupt):
        publish.publish(site, "a/b", target=f"local:{folder}")
    assert (folder / "data").is_dir() and not (folder / "tags.json").exists()
    monkeypatch.setattr(publish, "_replace_local", real)
    result = publish.publish(site, "a/b", target=f"local:{folder}")  # no --force needed
    assert result.published and (folder / "data" / "leaderboard.parquet").is_file()
    assert publish_marker.read(folder) == {"written_by": "ubench leaderboard publish", "format": 1,
                                           "tags": json.loads((folder / "tags.json").read_text()), "pending": None}
    assert not publish.publish(site, "a/b", target=f"local:{folder}").published


def test_an_edited_marker_no_longer_makes_the_folder_ours(site, tmp_path):
    folder = tmp_path / "dry"
    publish.publish(site, "a/b", target=f"local:{folder}")
    marker = json.loads((folder / publish_marker.NAME).read_text())
    marker["tags"] = {}
    (folder / publish_marker.NAME).write_text(json.dumps(marker))
    with pytest.raises(publish.PublishError, match="not empty and was not created by"):
        publish.publish(site, "a/b", target=f"local:{folder}")


# ---- ubench report: claims on the config's own rows ------------------------------------------

def _claims_config(tmp_path, results, seeds):
    config = {
        "name": "claims-test", "results_dir": str(results),
        "models": {"tiny-llama": {"base": "tiny-llama"}},
        "experiments": [{"benchmark": "tofu-tiny", "splits": ["forget10"], "models": ["tiny-llama"],
                         "objectives": ["npo", "ga"], "rectifiers": ["none", "gru"], "seeds": seeds,
                         "hyperparameters": {"lr": 1e-5}}],
        "report": {"claims": ["gru_utility"]},
    }
    path = tmp_path / f"cfg-{len(seeds)}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _config_results(root, seeds, lr=1e-5):
    for method in ("npo", "ga"):
        for rectifier in ("none", "gru"):
            for seed in seeds:
                document = syn.document(method=method, rectifier=rectifier, seed=seed, variant="full",
                                        metrics={"forget_quality": 0.3 + seed / 100 + (rectifier == "gru") / 10,
                                                 "model_utility": 0.4 + seed / 50 + (method == "ga") / 10})
                document["identity"]["hyperparameters"] = _dag_hyperparameters(lr)
                syn.write(root, document)


def _dag_hyperparameters(lr):
    """What a run of `_claims_config` records: its hyperparameters with the schema's defaults, which
    Snakemake's validate fills in before the grid is built."""
    from snakemake.utils import validate

    config = {"models": {"tiny-llama": {"base": "tiny-llama"}},
              "experiments": [{"benchmark": "tofu-tiny", "splits": ["forget10"], "models": ["tiny-llama"],
                               "objectives": ["npo"], "rectifiers": ["none"], "hyperparameters": {"lr": lr}}]}
    validate(config, str(grid.SCHEMA_PATH))
    return config["experiments"][0]["hyperparameters"]


def test_claims_are_checked_only_on_the_rows_of_the_config_asked_about(tmp_path, monkeypatch):
    from leaderboard import claims, report, report_render

    seen = []
    real = claims.check
    monkeypatch.setattr(claims, "check", lambda name, rows, documents: seen.append((rows, documents))
                        or real(name, rows, documents))
    demo = tmp_path / "demo"
    _config_results(demo, seeds=(0,))  # another config's results: one seed where this config runs three
    _config_results(demo / "other-lr", seeds=(0, 1, 2), lr=1e-3)
    configfile = _claims_config(tmp_path, demo, seeds=[0, 1, 2])
    _, blocks = report.build(configfile, results=[str(demo)])
    text = report_render.to_markdown(blocks)
    [(rows, documents)] = seen
    assert rows == [] and documents == []
    assert "gru_utility: cannot be checked" in text
    assert "4 row(s) of this config lack some of its seeds" in text and "(seeds 0 of 0, 1, 2)" in text
    assert "4 aggregated row(s) are not runs of this config" in text
    seen.clear()
    complete = tmp_path / "complete"
    _config_results(complete, seeds=(0, 1, 2))
    report.build(configfile, results=[str(complete)])
    [(rows, documents)] = seen
    assert len(rows) == 4 and len(documents) == 12


def test_the_report_compares_published_numbers_with_our_row_before_a_submissions(tmp_path):
    from leaderboard import report

    ours = tmp_path / "results"
    syn.write(ours, syn.document(method="wga", metrics={"forget_quality": 0.3, "model_utility": 0.4}))
    _submitted(tmp_path, "aaron", method="wga", seed=1, metrics={"forget_quality": 0.9, "model_utility": 0.9})
    rows = aggregate.aggregate(aggregate.load_results([ours, tmp_path / "submissions" / "aaron" / "results"]))
    assert [r["submitter"] for r in rows if r["method"] == "wga"] == ["aaron", None]  # row_id order
    assert report._first([r for r in rows if r["method"] == "wga"])["submitter"] is None
