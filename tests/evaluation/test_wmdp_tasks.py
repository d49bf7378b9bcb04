"""WMDP / MMLU through lm-eval: the local task definitions are upstream's, and the project's numbers
equal a direct `lm_eval.simple_evaluate` on upstream task YAMLs (same model, same questions)."""
from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import pytest
import yaml

from evaluation import models
from evaluation.benchmarks.wmdp import data as wmdp_data
from evaluation.benchmarks.wmdp import scoring, tasks

lm_eval = pytest.importorskip("lm_eval")
UPSTREAM = Path(lm_eval.__file__).parent / "tasks"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SUBJECTS = ("college_biology", "virology", "computer_security", "high_school_us_history", "sociology",
            "college_computer_science")


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _upstream_task(folder: str, name: str) -> dict:
    """An upstream task YAML with its `include` resolved (the fields lm-eval would see)."""
    document = _yaml(UPSTREAM / folder / name)
    base = _yaml(UPSTREAM / folder / document.pop("include")) if "include" in document else {}
    return {**base, **document}


DATASET_FIELDS = {"dataset_path", "dataset_name", "dataset_kwargs"}


def _without_dataset(document: dict) -> dict:
    return {k: v for k, v in document.items() if k not in DATASET_FIELDS}


def test_category_map_is_upstream():
    found = {}
    for path in (UPSTREAM / "mmlu" / "default").glob("mmlu_*.yaml"):
        document = _yaml(path)
        found[document["dataset_name"]] = re.fullmatch(r"mmlu_(.+)_tasks", document["tag"]).group(1)
    assert found == tasks.MMLU_CATEGORIES and len(found) == 57


def test_rendered_tasks_equal_upstream_except_data(tmp_path):
    cache = tmp_path / "cache"
    for subset in ("bio", "chem", "cyber"):
        ours = tasks.wmdp_task(subset, tmp_path / "q.json", cache)
        upstream = _upstream_task("wmdp", f"wmdp_{subset}.yaml")
        assert _without_dataset(ours) == _without_dataset(upstream)
        assert ours["dataset_kwargs"]["data_files"]["test"].startswith("/")
    assert tasks.wmdp_group(("bio", "chem", "cyber")) == _yaml(UPSTREAM / "wmdp" / "_wmdp.yaml")
    for subject, category in tasks.MMLU_CATEGORIES.items():
        ours = tasks.mmlu_task(subject, category, {"test": tmp_path / "t.json", "dev": tmp_path / "d.json"}, cache)
        upstream = _upstream_task("mmlu/default", f"mmlu_{subject}.yaml")
        assert _without_dataset(ours) == _without_dataset(upstream), subject
    for category in tasks.CATEGORIES:
        assert tasks.mmlu_category_group(category) == _yaml(UPSTREAM / "mmlu" / "default" / f"_mmlu_{category}.yaml")
    assert tasks.mmlu_group(tasks.CATEGORIES) == _yaml(UPSTREAM / "mmlu" / "default" / "_mmlu.yaml")


# ---- equality with a direct simple_evaluate on upstream YAMLs --------------------------------------------

@pytest.fixture(scope="module")
def real_subset(tmp_path_factory):
    """A few real questions of every WMDP subset and six MMLU subjects, in the data layout."""
    if not (SHARED / "wmdp" / "bio_questions.json").is_file():
        pytest.skip(f"real WMDP/MMLU data not found under {SHARED} (../shared/data is not part of the repo)")
    root = tmp_path_factory.mktemp("wmdp_subset")
    (root / "wmdp").mkdir()
    for subset in ("bio", "chem", "cyber"):
        rows = json.loads((SHARED / "wmdp" / f"{subset}_questions.json").read_text())[:12]
        (root / "wmdp" / f"{subset}_questions.json").write_text(json.dumps(rows))
    for split, count in (("test", 9), ("dev", 5)):
        (root / "mmlu" / split).mkdir(parents=True)
        for subject in SUBJECTS:
            lines = list(csv.reader((SHARED / "mmlu" / split / f"{subject}_{split}.csv").open(newline="")))
            with (root / "mmlu" / split / f"{subject}_{split}.csv").open("w", newline="") as handle:
                csv.writer(handle).writerows(lines[:count + 1])
    categories = {s: tasks.MMLU_CATEGORIES[s] for s in SUBJECTS}
    data = wmdp_data.open_folder(root, categories, expected=None, release="test subset")
    model_dir = models.build_tiny_llama(
        [r["question"] + " " + " ".join(r["choices"]) for rows in data.questions.values() for r in rows]
        + ["Answer: A. B. C. D. The following are multiple choice questions"], root / "model", seed=1)
    return root, data, model_dir


def _upstream_task_dir(root: Path, data, out: Path) -> Path:
    """Upstream YAML files, copied verbatim except the dataset fields; MMLU CSVs converted here
    (independently of the project's converter) to cais/mmlu's `choices` schema."""
    out.mkdir()
    for subset in data.subsets:
        document = _upstream_task("wmdp", f"wmdp_{subset}.yaml")
        document.pop("dataset_name")
        document.update(dataset_path="json",
                        dataset_kwargs={"data_files": {"test": str(root / "wmdp" / f"{subset}_questions.json")}})
        (out / f"wmdp_{subset}.yaml").write_text(yaml.safe_dump(document))
    group = _yaml(UPSTREAM / "wmdp" / "_wmdp.yaml")
    (out / "_wmdp.yaml").write_text(yaml.safe_dump(group))
    for subject in SUBJECTS:
        files = {}
        for split in ("test", "dev"):
            with (root / "mmlu" / split / f"{subject}_{split}.csv").open(newline="") as handle:
                rows = [{"question": r["question"], "subject": subject, "answer": int(r["answer"]),
                         "choices": [r[f"choice{i}"] for i in range(4)]} for r in csv.DictReader(handle)]
            files[split] = str(out / f"{subject}_{split}.json")
            Path(files[split]).write_text(json.dumps(rows))
        document = _upstream_task("mmlu/default", f"mmlu_{subject}.yaml")
        document.pop("dataset_name")
        document.update(dataset_path="json", dataset_kwargs={"data_files": files})
        (out / f"mmlu_{subject}.yaml").write_text(yaml.safe_dump(document))
    for name in ("_mmlu.yaml", *(f"_mmlu_{c}.yaml" for c in tasks.CATEGORIES)):
        (out / name).write_text((UPSTREAM / "mmlu" / "default" / name).read_text())
    return out


@pytest.mark.shared_data
@pytest.mark.parametrize("variant", ["rmu-official", "sago"])
def test_numbers_equal_direct_simple_evaluate(real_subset, tmp_path, variant, monkeypatch):
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    root, data, model_dir = real_subset
    chosen = scoring.get_variant(variant)
    model, tokenizer, _ = models.load_model(str(model_dir))
    result, table, _ = scoring.evaluate(model, tokenizer, data, chosen, batch_size=8)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    model, tokenizer, _ = models.load_model(str(model_dir))
    if chosen.dtype:
        import torch
        model = model.to(getattr(torch, chosen.dtype))
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=8)
    manager = TaskManager(include_path=str(_upstream_task_dir(root, data, tmp_path / "upstream")), include_defaults=False)
    direct_wmdp = lm_eval.simple_evaluate(model=lm, tasks=["wmdp"], num_fewshot=chosen.wmdp_shots, task_manager=manager)
    direct_mmlu = lm_eval.simple_evaluate(model=lm, tasks=["mmlu"], num_fewshot=chosen.mmlu_shots, task_manager=manager)

    def direct(name, key):
        out = direct_wmdp if name.startswith("wmdp") else direct_mmlu
        return out["results"].get(name, out.get("groups", {}).get(name))[key]

    checked = ["wmdp_bio", "wmdp_chem", "wmdp_cyber", "wmdp", "mmlu", "mmlu_stem", "mmlu_other",
               "mmlu_social_sciences", "mmlu_humanities", "mmlu_college_biology", "mmlu_virology",
               "mmlu_college_computer_science", "mmlu_computer_security"]
    for name in checked:
        assert result["metrics"][name] == direct(name, "acc,none"), name
        assert result["metric_details"][name]["stderr"] == pytest.approx(direct(name, "acc_stderr,none"), abs=1e-12), name
    assert len(table) == 36 + 9 * len(SUBJECTS)
    # metrics.md §3 formulas on the per-item table give lm-eval's numbers back
    from evaluation.benchmarks.wmdp import metrics as m

    by_task = table.groupby("eval_set")["correct"]
    for subset in ("bio", "chem", "cyber"):
        p = m.accuracy(by_task.get_group(f"wmdp_{subset}").tolist())
        assert p == pytest.approx(result["metrics"][f"wmdp_{subset}"], abs=1e-12)
        assert m.accuracy_stderr(p, 12) == pytest.approx(result["metric_details"][f"wmdp_{subset}"]["stderr"], abs=1e-12)
    assert m.size_weighted_mean((result["metrics"][f"wmdp_{s}"], 12) for s in ("bio", "chem", "cyber")) == \
        pytest.approx(result["metrics"]["wmdp"], abs=1e-12)
    mmlu = table[table["family"] == "mmlu"]
    assert m.accuracy(mmlu["correct"].tolist()) == pytest.approx(result["metrics"]["mmlu"], abs=1e-12)
    evaluator = result["evaluator"]
    assert evaluator["lm_eval_version"] == lm_eval.__version__ and evaluator["batch_size"] == 8
    assert evaluator["mmlu_num_fewshot"] == chosen.mmlu_shots and evaluator["wmdp_num_fewshot"] == 0
    assert evaluator["dtype"] == (chosen.dtype or "float32")
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # monkeypatched here; scoring restores what it found


def test_rendered_prompt_is_upstream_rendering(real_subset, tmp_path):
    """lm-eval's own rendering of a converted MMLU row equals the upstream template on the CSV."""
    from lm_eval.tasks import TaskManager

    root, data, _ = real_subset
    rendered = tasks.render(data, tmp_path)
    manager = TaskManager(include_path=rendered["task_dir"], include_defaults=False)
    task = manager.load_task_or_group(["mmlu_virology"])["mmlu_virology"]
    doc = next(iter(task.test_docs()))
    row = data.mmlu["virology"]["test"][0]
    expected = (row["question"].strip() + "".join(f"\n{l}. {c}" for l, c in zip("ABCD", row["choices"])) + "\nAnswer:")
    assert task.doc_to_text(doc) == expected
    assert task.config.description == "The following are multiple choice questions (with answers) about virology.\n\n"
    assert task.config.target_delimiter == " "
