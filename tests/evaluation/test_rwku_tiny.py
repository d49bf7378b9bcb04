"""rwku-tiny acceptance: the fine-tuned tiny Llama answers the forget probes far better than the
untrained one, and unlearning batch 1-4 (NPO) lowers forget scores more than neighbour scores.
Also: the tiny model evaluated on the real RWKU probes of target 1 (CI subset; targets 1-10 in
benchmarks/bench_rwku.py)."""
import json
import time
from pathlib import Path

import pytest

from evaluation import benchmarks, evaluate, finetune, models
from workflows import commands

REPO = Path(__file__).resolve().parents[2]
SHARED_RWKU = REPO.parent / "shared" / "data" / "rwku"
SPLIT = "batch-1-4"
NPO = {"benchmark": "rwku-tiny", "split": SPLIT, "model": "tiny-llama", "objective": "npo", "rectifier": "none",
       "parametrization": "full", "seed": 0,
       "hyperparameters": {"lr": 5.0e-4, "max_steps": 20, "max_length": 64, "batch_size": 8, "grad_accum": 1,
                           "weight_decay": 0.0, "scheduler": "constant", "max_grad_norm": 1.0}}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rwku_tiny_run")
    data = benchmarks.get("rwku-tiny").generate(root / "data")
    finetune.run("rwku-tiny", str(data), "all-targets", "tiny-llama", root / "target", progress=False)
    bench = benchmarks.get("rwku-tiny")
    untrained = models.build_tiny_llama(bench.vocabulary_texts(bench.open(data)), root / "untrained", seed=0)
    tok = models.load_tokenizer(str(untrained))
    bench.prepare_tiny_tokenizer(tok)
    tok.save_pretrained(untrained)
    commands.unlearn(NPO, str(data), str(root / "target"), root / "npo", root / "npo.jsonl", root / "npo.json",
                     progress=False)
    metrics = {name: evaluate.run(evaluate.EvaluationSpec(
        str(root / name), "rwku-tiny", str(data), SPLIT, "official", root / f"eval-{name}", progress=False))["metrics"]
               for name in ("untrained", "target", "npo")}
    return root, data, metrics


@pytest.mark.slow
def test_target_answers_forget_probes_and_unlearning_separates(tiny_run):
    _, _, metrics = tiny_run
    for name, values in metrics.items():
        print(f"{name:9s} " + " ".join(f"{k}={values[k]:.3f}" for k in
                                       ("forget_fb", "forget_qa", "forget_aa", "forget_all", "neighbor_all")))
    untrained, target, npo = metrics["untrained"], metrics["target"], metrics["npo"]
    assert target["forget_all"] > untrained["forget_all"] + 0.25
    assert target["neighbor_all"] > untrained["neighbor_all"] + 0.4
    forget_drop = target["forget_all"] - npo["forget_all"]
    neighbor_drop = target["neighbor_all"] - npo["neighbor_all"]
    print(f"NPO on {SPLIT}: forget_all drop {forget_drop:.3f}, neighbor_all drop {neighbor_drop:.3f}")
    assert forget_drop > 0.15 and forget_drop > neighbor_drop + 0.05
    assert npo["mia_fm_loss"] < target["mia_fm_loss"]    # forget members look less member-like


@pytest.mark.slow
def test_evaluation_output_records_every_variant_field(tiny_run):
    root, data, _ = tiny_run
    document = json.loads((root / "eval-target" / "metrics.json").read_text())
    block = document["evaluator"]
    for key in ("variant", "rouge_package", "generation_budget", "targets_evaluated", "mia_as_set_means",
                "stop_ids_resolved", "fluency_tokenizer", "evaluator", "setting"):
        assert key in block, key
    assert block["targets_evaluated"] == "1-4" and block["setting"] == "batch"
    sago = evaluate.run(evaluate.EvaluationSpec(
        str(root / "target"), "rwku-tiny", str(data), SPLIT, "sago", root / "eval-sago", progress=False))
    assert sago["evaluator"]["variant"] == "sago" and "stemming on" in sago["evaluator"]["rouge_package"]
    assert "mmlu" not in sago["metrics"] and 0.0 <= sago["metrics"]["forget_all"] <= 1.0


class _FirstRows:
    """A view of real RWKU data with the first `n` rows of every MIA / utility file (CI size)."""

    def __init__(self, data, n):
        self._data, self._n = data, n

    def __getattr__(self, name):
        return getattr(self._data, name)

    def rows(self, target_id, name):
        rows = self._data.rows(target_id, name)
        return rows if name.startswith(("forget_level", "neighbor_level")) else rows[:self._n]

    def rows_for(self, target_ids, name):
        return [row for t in target_ids for row in self.rows(t, name)]


@pytest.mark.slow
@pytest.mark.shared_data
def test_tiny_model_on_real_rwku_probes_of_target_1(tmp_path):
    """Every real probe of target 1 and the first 3 rows of each MIA / utility file through the
    official evaluator (targets 1-10 in full: benchmarks/bench_rwku.py)."""
    if not (SHARED_RWKU / "1_Stephen_King").is_dir():
        pytest.skip(f"real RWKU data not found at {SHARED_RWKU}")
    from evaluation.benchmarks.rwku import evaluator
    from evaluation.benchmarks.rwku.data import RwkuData

    bench = benchmarks.get("rwku")
    data = RwkuData.from_folder(SHARED_RWKU)
    folder = models.build_tiny_llama(bench.vocabulary_texts(RwkuData(data.root, {1: data.target(1)})),
                                     tmp_path / "tiny", seed=0, max_position_embeddings=4096)
    model, tok, _ = models.load_model(str(folder))
    bench.prepare_tiny_tokenizer(tok)
    start = time.perf_counter()
    result, table, harness = evaluator.evaluate(model, tok, _FirstRows(data, 3), evaluator.Scope([1], [1]),
                                                evaluator.get_variant("official"), progress=False)
    print(f"tiny model, real RWKU target 1 (probes all, utility 3 rows/file): {time.perf_counter() - start:.1f} s, "
          f"{harness.cost()}")
    items = result["metric_details"]["items"]
    assert items["forget_level3"] == len(data.rows(1, "forget_level3")) and items["neighbor_level2"] > 0
    assert set(result["metrics"]) >= {"forget_all", "neighbor_all", "mmlu", "bbh", "truthfulqa_mc2",
                                      "triviaqa_f1", "fluency", "mia_fm_loss", "mia_rm_mink20"}
    assert (table.eval_set == "mmlu").sum() == 3
    assert result["evaluator"]["stop_ids_resolved"]["\\n"] == tok.unk_token_id  # recorded escaped


@pytest.mark.shared_data
def test_real_target_without_utility_files_fails_naming_the_file(tmp_path):
    if not (SHARED_RWKU / "1_Stephen_King").is_dir():
        pytest.skip(f"real RWKU data not found at {SHARED_RWKU}")
    from evaluation.benchmarks.rwku import evaluator
    from evaluation.benchmarks.rwku.data import RwkuData, RwkuDataError

    data = RwkuData.from_folder(SHARED_RWKU)
    with pytest.raises(RwkuDataError, match=r"forget_mia\.json is missing for target 11"):
        evaluator.utility_targets(data, [11], strict=True)
    assert evaluator.utility_targets(data, list(range(1, 51)), strict=False) == list(range(1, 11))


def _bos_per_row(model, bos_id: int, run) -> list[int]:
    """Run `run()` and return, per row of every multi-token forward that starts a sequence (prompts,
    scored sequences; not the continuations scored against a cached prompt), how many BOS tokens
    the model was given."""
    counts = []

    def hook(_module, args, kwargs):
        ids = args[0] if args else kwargs["input"]
        if ids.shape[1] > 1:
            counts.extend(n for n in (ids == bos_id).sum(dim=1).tolist() if n)

    handle = model.get_input_embeddings().register_forward_pre_hook(hook, with_kwargs=True)
    try:
        run()
    finally:
        handle.remove()
    return counts


def test_official_as_published_gives_every_templated_prompt_a_second_bos(tmp_path):
    """RWKU's generate_completions / get_next_word_predictions / score_completions tokenise chat-rendered
    prompts (which hold BOS) with add_special_tokens=True: two BOS. `official` gives one; MIA texts
    (tokenizer.encode of raw text) have one under both."""
    from evaluation.benchmarks.rwku import evaluator as rwku_evaluator

    bench = benchmarks.get("rwku-tiny")
    data_dir = bench.generate(tmp_path / "data", targets=2)
    folder = models.build_tiny_llama(bench.vocabulary_texts(bench.open(data_dir)), tmp_path / "model", seed=0)
    tok = models.load_tokenizer(str(folder))
    bench.prepare_tiny_tokenizer(tok)
    model, _, _ = models.load_model(str(folder))
    data = bench.open(data_dir)
    scope = rwku_evaluator.Scope([1], [1])
    results, counts = {}, {}
    for name in ("official", "official_as_published"):
        variant = rwku_evaluator.get_variant(name)
        counts[name] = _bos_per_row(model, tok.bos_token_id, lambda: results.__setitem__(
            name, rwku_evaluator.evaluate(model, tok, data, scope, variant, batch_size=8, progress=False)))
    assert set(counts["official"]) == {1}
    assert set(counts["official_as_published"]) == {1, 2}  # 1: the MIA texts
    assert counts["official_as_published"].count(1) == counts["official"].count(1) - counts[
        "official_as_published"].count(2)
    official, published = (results[n][0] for n in ("official", "official_as_published"))
    assert published["evaluator"]["double_bos"] is True and official["evaluator"]["double_bos"] is False
    assert published["evaluator"]["truthfulqa_label_span"] == "prompt_length"
    assert published["evaluator"]["decode_clean_up"] == "tokenizer_flag"
    assert official["evaluator"]["decode_clean_up"] == "as_loaded" and "decode_clean_up_rule" in official["evaluator"]
    for key in ("mia_fm_loss", "mia_rm_loss", "mia_fm_mink20"):  # raw texts: one BOS under both
        assert published["metrics"][key] == official["metrics"][key]
